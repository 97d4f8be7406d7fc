const millisecondsPerDay = 86_400_000;

/**
 * Seconds from `now` until a gMSA's managed password is due to change: `pwdLastSet` plus
 * `msDS-ManagedPasswordInterval` days.
 *
 * The result is negative once the interval has passed. That is normal for a gMSA: the DC
 * rolls the password lazily, the first time a principal retrieves it after the interval
 * ends, and only then does `pwdLastSet` move. A large negative value therefore means "no
 * host has asked for this password since it expired", which is worth showing, not hiding.
 *
 * @throws RangeError when a date is invalid or the interval is not a positive number of days.
 */
export function secondsUntilPasswordChange(pwdLastSet: Date, intervalDays: number, now: Date): number {
  const lastSet = pwdLastSet.getTime();
  const current = now.getTime();
  if (Number.isNaN(lastSet) || Number.isNaN(current)) throw new RangeError("invalid date");
  if (!Number.isFinite(intervalDays) || intervalDays <= 0) {
    throw new RangeError("the password interval must be a positive number of days");
  }
  return (lastSet + intervalDays * millisecondsPerDay - current) / 1000;
}
