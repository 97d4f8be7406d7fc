/**
 * Leader election through a lease kept in the directory (docs/decisions/leader-lease.md): one
 * value on one object, on the PDC emulator, taken and renewed by compare-and-swap. Only the
 * leader writes; a leader that cannot renew stops writing before any other replica may take the
 * lease (fencing by time, on this process's monotonic and wall clocks, with a skew margin).
 */
import type { Leadership, LeadershipStatus, LeaseStore } from "./lease.ts";
import { decodeLease, encodeLease, fencingMargin, isReleased, NEW_LEASE } from "./lease.ts";
import type { Logger } from "./revision.ts";

/** Options of {@link LeaderElector}. */
export interface ElectorOptions {
  readonly open: () => Promise<LeaseStore>;
  readonly replicaId: string;
  readonly durationMs: number;
  readonly logger: Logger;
  /** Called on every change of leadership (metrics, triggering a reconcile). */
  readonly onChange?: (leader: boolean) => void;
  /** Wall clock, for the renew time written into the lease. */
  readonly now?: () => Date;
}

const message = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/**
 * Takes and keeps the lease. Every `durationMs / 5` the leader renews (one CAS) and a follower
 * reads; a follower takes the lease when it is released, or when the same value has stood
 * unchanged for a whole lease duration by the follower's own clock (so no clock is compared
 * with another). The leader may write until `sent + duration - margin`, where `sent` is when it
 * sent its last successful renew: by then every follower still waits.
 */
export class LeaderElector implements Leadership {
  readonly #options: ElectorOptions;
  readonly #retryMs: number;
  readonly #wall: () => Date;
  #store: LeaseStore | undefined;
  /** The value this replica last wrote, while it leads. */
  #mine: string | undefined;
  /** The value this process last sent in a swap, acknowledged or not: a lease it may take back at once. */
  #sent: string | undefined;
  /** Monotonic time (performance.now) until which this replica may write. */
  #until = 0;
  /** The same deadline by the wall clock (ms since the epoch): see {@link canWrite}. */
  #wallUntil = 0;
  /** The value a follower last read, and since when (monotonic) it has stood. */
  #seen: { value: string | undefined; since: number } | undefined;
  #leading = false;
  #holder: string | null = null;
  #failure: string | null = null;
  #fence = new AbortController();
  #fenceTimer: NodeJS.Timeout | undefined;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;

  constructor(options: ElectorOptions) {
    this.#options = options;
    this.#retryMs = Math.max(200, options.durationMs / 5);
    this.#wall = options.now ?? (() => new Date());
    // Not leading yet: the first fence is already down.
    this.#fence.abort(new Error("not the leader"));
  }

  get fence(): AbortSignal {
    return this.#fence.signal;
  }

  canWrite(): boolean {
    // Both clocks: the monotonic one is immune to clock steps, but on Linux it stands still
    // while the host is suspended; the wall clock, read from the hardware again on resume, moves.
    return this.#leading && performance.now() < this.#until && this.#wall().getTime() < this.#wallUntil;
  }

  status(): LeadershipStatus {
    return {
      replicaId: this.#options.replicaId,
      leader: this.canWrite(),
      holder: this.#holder,
      server: this.#store?.server ?? null,
      leaseDurationSeconds: this.#options.durationMs / 1000,
      message: this.#failure,
    };
  }

  /** Starts campaigning; returns at once. */
  start(): void {
    const loop = async (): Promise<void> => {
      if (this.#stopped) return;
      await this.#tick();
      if (!this.#stopped) this.#timer = setTimeout(() => void (this.#running = loop()), this.#retryMs);
    };
    this.#running = loop();
  }

  /** Stops campaigning; a leader stops writing, then releases the lease so a follower takes over at once. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
    const mine = this.#mine;
    const wasLeading = this.#leading;
    this.#stepDown("stopping");
    if (wasLeading && mine !== undefined && this.#store) {
      const lease = decodeLease(mine);
      const released = encodeLease({ ...lease, holder: "", renewTime: this.#wall().toISOString() });
      await this.#store.swap([mine], released).catch(() => false);
    }
    await this.#store?.close().catch(() => undefined);
    this.#store = undefined;
  }

  async #tick(): Promise<void> {
    try {
      this.#store ??= await this.#options.open();
      // Reached: what the campaign finds wrong with the lease object, it says again.
      this.#failure = null;
      if (this.#leading) await this.#renew(this.#store);
      else await this.#campaign(this.#store);
    } catch (error) {
      // The lease's DC cannot be reached: nobody can take the lease (it lives on that DC only),
      // and this replica keeps leading only until its deadline.
      this.#failure = `the lease on the PDC emulator cannot be reached: ${message(error)}`;
      this.#holder = null;
      if (this.#leading && !this.canWrite()) this.#stepDown(this.#failure);
      const store = this.#store;
      this.#store = undefined;
      await store?.close().catch(() => undefined);
    }
  }

  async #renew(store: LeaseStore): Promise<void> {
    const mine = this.#mine!;
    const lease = decodeLease(mine);
    const next = encodeLease({ ...lease, renewTime: this.#wall().toISOString() });
    const sent = performance.now();
    const sentWall = this.#wall().getTime();
    this.#sent = next;
    if (await store.swap([mine], next)) {
      this.#mine = next;
      this.#holdUntil(sent, sentWall);
      this.#holder = this.#options.replicaId;
    } else {
      this.#stepDown("another replica took the lease");
    }
  }

  async #campaign(store: LeaseStore): Promise<void> {
    const me = this.#options.replicaId;
    let values = await store.read();
    if (values === undefined) values = (await store.create(NEW_LEASE)) ? [NEW_LEASE] : await store.read();
    if (values === undefined) return;
    if (values.length === 0) {
      // Emptied by hand: put back a new lease, which must then stand a whole lease duration.
      this.#holder = "";
      this.#failure = "the lease object held no value; a new lease was put back";
      await store.swap([], NEW_LEASE);
      return;
    }
    // Several values (one added by hand beside the lease) are one state, taken all at once by the
    // same atomic swap, after they have stood a whole lease duration.
    const value = values.length === 1 ? values[0]! : JSON.stringify([...values].sort());
    const now = performance.now();
    if (this.#seen === undefined || this.#seen.value !== value) this.#seen = { value, since: now };
    const lease = decodeLease(values.length === 1 ? value : undefined);
    this.#holder = lease.holder;
    if (values.length > 1)
      this.#failure = `the lease object holds ${values.length} values; it is taken after a lease duration`;
    // At once only a lease its holder released, or the one this process itself wrote last (a
    // renew whose answer was lost). Anything else, even a value naming this replica's id (a twin
    // with the same --replica-id, a restarted process) or a lease object deleted or overwritten
    // by hand, may hide a leader still writing: it must stand for a whole lease duration.
    const free = isReleased(value) || value === this.#sent || now - this.#seen.since >= this.#options.durationMs;
    if (!free) return;
    const next = encodeLease({
      holder: me,
      renewTime: this.#wall().toISOString(),
      durationSeconds: this.#options.durationMs / 1000,
      transitions: lease.holder === me ? lease.transitions : lease.transitions + 1,
    });
    const sent = performance.now();
    const sentWall = this.#wall().getTime();
    this.#sent = next;
    if (!(await store.swap(values, next))) return;
    this.#mine = next;
    this.#holder = me;
    this.#leading = true;
    this.#fence = new AbortController();
    this.#holdUntil(sent, sentWall);
    this.#options.logger.info(
      { replica: me, previous: lease.holder || null, server: store.server },
      "leader election: this replica leads",
    );
    this.#options.onChange?.(true);
  }

  /** Extends the right to write to `sent + duration - margin` on both clocks, and arms the step-down at that time. */
  #holdUntil(sent: number, sentWall: number): void {
    const { durationMs } = this.#options;
    this.#until = sent + durationMs - fencingMargin(durationMs);
    this.#wallUntil = sentWall + durationMs - fencingMargin(durationMs);
    clearTimeout(this.#fenceTimer);
    this.#fenceTimer = setTimeout(
      () => {
        if (this.#leading && !this.canWrite())
          this.#stepDown(this.#failure ?? "the lease was not renewed in time; writes stopped");
      },
      Math.max(0, this.#until - performance.now()) + 1,
    );
    this.#fenceTimer.unref();
  }

  #stepDown(why: string): void {
    clearTimeout(this.#fenceTimer);
    if (!this.#leading) return;
    this.#leading = false;
    this.#until = 0;
    this.#mine = undefined;
    this.#seen = undefined;
    this.#fence.abort(new Error(`not the leader: ${why}`));
    this.#options.logger.warn({ replica: this.#options.replicaId, reason: why }, "leader election: stepped down");
    this.#options.onChange?.(false);
  }
}
