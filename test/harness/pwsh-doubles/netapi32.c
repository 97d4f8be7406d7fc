/*
 * Test double of the Win32 functions gmsa-host.ps1 calls through P/Invoke, for Linux, with the
 * signatures Windows exports (wide strings are UTF-16, as CharSet.Unicode marshals them on every
 * platform; the last error is errno, which is what .NET reads for SetLastError on Linux). Built
 * once as both netapi32.dll and advapi32.dll; .NET loads them for [DllImport("netapi32.dll")] and
 * [DllImport("advapi32.dll")] when their folder is on LD_LIBRARY_PATH.
 *
 * Every answer comes from netapi-helper.ts (node; paths in GMSA_DOUBLE_NODE and
 * GMSA_DOUBLE_NETAPI_HELPER), which reads the test host's state file and, for
 * NetQueryServiceAccount, asks the real Samba DC as the host's computer account. The helper
 * prints a Win32 status on its first line and the answer on the next lines.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct { int32_t State; } MSA_INFO_0;
typedef struct { void *Sid; } LOCALGROUP_MEMBERS_INFO_0;

#define ERROR_INSUFFICIENT_BUFFER 122
#define ERROR_INVALID_PARAMETER 87
#define ERROR_INVALID_LEVEL 124
#define NERR_InternalError 2140

static int from_wide(const uint16_t *w, char *out, size_t size) {
  size_t o = 0;
  for (size_t i = 0; w[i] != 0; i++) {
    uint16_t c = w[i];
    if (c < 0x80) {
      if (o + 1 >= size) return 0;
      out[o++] = (char)c;
    } else if (c < 0x800) {
      if (o + 2 >= size) return 0;
      out[o++] = (char)(0xc0 | (c >> 6));
      out[o++] = (char)(0x80 | (c & 0x3f));
    } else {
      if (o + 3 >= size) return 0;
      out[o++] = (char)(0xe0 | (c >> 12));
      out[o++] = (char)(0x80 | ((c >> 6) & 0x3f));
      out[o++] = (char)(0x80 | (c & 0x3f));
    }
  }
  out[o] = 0;
  return 1;
}

/* UTF-8 (BMP only) to UTF-16; returns the number of UTF-16 units, without the terminator. */
static size_t to_wide(const char *s, uint16_t *out, size_t size) {
  size_t o = 0;
  const unsigned char *p = (const unsigned char *)s;
  while (*p) {
    uint16_t c;
    if (*p < 0x80) c = *p++;
    else if ((*p & 0xe0) == 0xc0 && p[1]) { c = (uint16_t)(((p[0] & 0x1f) << 6) | (p[1] & 0x3f)); p += 2; }
    else if (p[1] && p[2]) { c = (uint16_t)(((p[0] & 0x0f) << 12) | ((p[1] & 0x3f) << 6) | (p[2] & 0x3f)); p += 3; }
    else break;
    if (out != NULL && o < size) out[o] = c;
    o++;
  }
  if (out != NULL && o < size) out[o] = 0;
  return o;
}

static void sid_to_string(const unsigned char *sid, char *out, size_t size) {
  unsigned long long auth = 0;
  for (int i = 2; i < 8; i++) auth = (auth << 8) | sid[i];
  int n = snprintf(out, size, "S-%u-%llu", sid[0], auth);
  for (int i = 0; i < sid[1] && n > 0 && (size_t)n < size; i++) {
    const unsigned char *a = sid + 8 + 4 * i;
    uint32_t v = (uint32_t)a[0] | ((uint32_t)a[1] << 8) | ((uint32_t)a[2] << 16) | ((uint32_t)a[3] << 24);
    n += snprintf(out + n, size - (size_t)n, "-%u", v);
  }
}

/* Returns the binary length, 0 when the text is not a SID. */
static size_t sid_from_string(const char *text, unsigned char *out) {
  unsigned long long auth;
  char *end;
  if (strncmp(text, "S-1-", 4) != 0) return 0;
  auth = strtoull(text + 4, &end, 10);
  int count = 0;
  uint32_t sub[15];
  while (*end == '-' && count < 15) {
    sub[count++] = (uint32_t)strtoul(end + 1, &end, 10);
  }
  out[0] = 1;
  out[1] = (unsigned char)count;
  for (int i = 0; i < 6; i++) out[2 + i] = (unsigned char)(auth >> (8 * (5 - i)));
  for (int i = 0; i < count; i++)
    for (int b = 0; b < 4; b++) out[8 + 4 * i + b] = (unsigned char)(sub[i] >> (8 * b));
  return 8 + 4 * (size_t)count;
}

/* Runs the helper; returns its status (first line) and leaves the rest in out. */
static long helper(const char *cmd, const char *a1, const char *a2, char *out, size_t size) {
  const char *node = getenv("GMSA_DOUBLE_NODE");
  const char *script = getenv("GMSA_DOUBLE_NETAPI_HELPER");
  if (node == NULL || script == NULL) return NERR_InternalError;
  int fds[2];
  if (pipe(fds) != 0) return NERR_InternalError;
  pid_t pid = fork();
  if (pid < 0) return NERR_InternalError;
  if (pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    execl(node, node, "--no-warnings", script, cmd, a1 ? a1 : "", a2 ? a2 : "", (char *)NULL);
    _exit(127);
  }
  close(fds[1]);
  char buf[65536];
  size_t got = 0;
  ssize_t n;
  while (got + 1 < sizeof buf && (n = read(fds[0], buf + got, sizeof buf - 1 - got)) > 0) got += (size_t)n;
  buf[got] = 0;
  close(fds[0]);
  int wstatus = 0;
  waitpid(pid, &wstatus, 0);
  char *nl = strchr(buf, '\n');
  if (nl == NULL) return NERR_InternalError;
  *nl = 0;
  long status = strtol(buf, NULL, 10);
  snprintf(out, size, "%s", nl + 1);
  return status;
}

int32_t NetQueryServiceAccount(const uint16_t *server, const uint16_t *account, uint32_t level, void **buffer) {
  char name[512], out[256];
  if (buffer == NULL || account == NULL) return ERROR_INVALID_PARAMETER;
  *buffer = NULL;
  if (server != NULL) return ERROR_INVALID_PARAMETER; /* the double answers for this machine only */
  if (level != 0) return ERROR_INVALID_LEVEL;
  if (!from_wide(account, name, sizeof name)) return ERROR_INVALID_PARAMETER;
  long status = helper("query", name, NULL, out, sizeof out);
  if (status != 0) return (int32_t)status;
  MSA_INFO_0 *info = malloc(sizeof *info);
  if (info == NULL) return NERR_InternalError;
  info->State = (int32_t)strtol(out, NULL, 10);
  *buffer = info;
  return 0;
}

/* Returns an NTSTATUS (0 or 0xC...), as the real function does; the helper prints it as a number. */
int32_t NetAddServiceAccount(const uint16_t *server, const uint16_t *account, const uint16_t *password, uint32_t flags) {
  char name[512], out[256];
  if (account == NULL || server != NULL || password != NULL) return (int32_t)0xC000000Du; /* STATUS_INVALID_PARAMETER */
  if (flags != 1) return (int32_t)0xC000000Du; /* the script only links existing accounts */
  if (!from_wide(account, name, sizeof name)) return (int32_t)0xC000000Du;
  return (int32_t)helper("add", name, NULL, out, sizeof out);
}

int32_t NetApiBufferFree(void *buffer) {
  free(buffer);
  return 0;
}

int32_t NetLocalGroupGetMembers(const uint16_t *server, const uint16_t *group, uint32_t level, void **buffer,
                                uint32_t prefmaxlen, uint32_t *entriesread, uint32_t *totalentries, uintptr_t *resume) {
  char name[1024], out[65536];
  (void)prefmaxlen;
  if (buffer == NULL || group == NULL || entriesread == NULL || totalentries == NULL) return ERROR_INVALID_PARAMETER;
  *buffer = NULL;
  if (server != NULL) return ERROR_INVALID_PARAMETER;
  if (level != 0) return ERROR_INVALID_LEVEL;
  if (resume != NULL && *resume != 0) { *entriesread = 0; *totalentries = 0; return 0; }
  if (!from_wide(group, name, sizeof name)) return ERROR_INVALID_PARAMETER;
  long status = helper("group-members", name, NULL, out, sizeof out);
  if (status != 0) return (int32_t)status;
  /* One block: the entries, then the SIDs they point to (freed at once by NetApiBufferFree). */
  size_t count = 0;
  for (char *p = out; *p; p++) if (*p == '\n') count++;
  unsigned char *block = calloc(1, count * sizeof(LOCALGROUP_MEMBERS_INFO_0) + count * 68 + 1);
  if (block == NULL) return NERR_InternalError;
  LOCALGROUP_MEMBERS_INFO_0 *entries = (LOCALGROUP_MEMBERS_INFO_0 *)block;
  unsigned char *sids = block + count * sizeof(LOCALGROUP_MEMBERS_INFO_0);
  size_t i = 0;
  for (char *line = strtok(out, "\n"); line != NULL && i < count; line = strtok(NULL, "\n")) {
    if (sid_from_string(line, sids + 68 * i) == 0) continue;
    entries[i].Sid = sids + 68 * i;
    i++;
  }
  *entriesread = (uint32_t)i;
  *totalentries = (uint32_t)i;
  if (resume != NULL) *resume = 0;
  *buffer = block;
  return 0;
}

int32_t NetLocalGroupAddMembers(const uint16_t *server, const uint16_t *group, uint32_t level, void *buf,
                                uint32_t total) {
  char name[1024], sid[256], out[256];
  if (server != NULL || group == NULL || buf == NULL) return ERROR_INVALID_PARAMETER;
  if (level != 0) return ERROR_INVALID_LEVEL;
  if (!from_wide(group, name, sizeof name)) return ERROR_INVALID_PARAMETER;
  LOCALGROUP_MEMBERS_INFO_0 *entries = buf;
  for (uint32_t i = 0; i < total; i++) {
    sid_to_string(entries[i].Sid, sid, sizeof sid);
    long status = helper("group-add", name, sid, out, sizeof out);
    if (status != 0) return (int32_t)status;
  }
  return 0;
}

static int32_t fail(int code) {
  errno = code;
  return 0;
}

/* Copies text into a caller's wide buffer of *cch units; 0 and ERROR_INSUFFICIENT_BUFFER when too small. */
static int put_wide(const char *text, uint16_t *buf, uint32_t *cch) {
  size_t need = to_wide(text, NULL, 0) + 1;
  if (buf == NULL || *cch < need) { *cch = (uint32_t)need; return 0; }
  to_wide(text, buf, *cch);
  *cch = (uint32_t)(need - 1);
  return 1;
}

int32_t LookupAccountNameW(const uint16_t *system, const uint16_t *account, void *sid, uint32_t *cbSid,
                           uint16_t *domain, uint32_t *cchDomain, int32_t *use) {
  char name[1024], out[1024];
  if (system != NULL || account == NULL || cbSid == NULL || cchDomain == NULL || use == NULL)
    return fail(ERROR_INVALID_PARAMETER);
  if (!from_wide(account, name, sizeof name)) return fail(ERROR_INVALID_PARAMETER);
  long status = helper("lookup-name", name, NULL, out, sizeof out);
  if (status != 0) return fail((int)status);
  /* out: SID \n DOMAIN \n use */
  char *sidText = strtok(out, "\n");
  char *dom = strtok(NULL, "\n");
  char *useText = strtok(NULL, "\n");
  if (sidText == NULL || dom == NULL || useText == NULL) return fail(NERR_InternalError);
  unsigned char bin[68];
  size_t len = sid_from_string(sidText, bin);
  if (len == 0) return fail(NERR_InternalError);
  int ok = 1;
  if (sid == NULL || *cbSid < len) { *cbSid = (uint32_t)len; ok = 0; }
  if (!put_wide(dom, domain, cchDomain)) ok = 0;
  if (!ok) return fail(ERROR_INSUFFICIENT_BUFFER);
  memcpy(sid, bin, len);
  *cbSid = (uint32_t)len;
  *use = (int32_t)strtol(useText, NULL, 10);
  return 1;
}

int32_t LookupAccountSidW(const uint16_t *system, const void *sid, uint16_t *name, uint32_t *cchName,
                          uint16_t *domain, uint32_t *cchDomain, int32_t *use) {
  char text[256], out[1024];
  if (system != NULL || sid == NULL || cchName == NULL || cchDomain == NULL || use == NULL)
    return fail(ERROR_INVALID_PARAMETER);
  sid_to_string(sid, text, sizeof text);
  long status = helper("lookup-sid", text, NULL, out, sizeof out);
  if (status != 0) return fail((int)status);
  /* out: NAME \n DOMAIN \n use */
  char *n = strtok(out, "\n");
  char *dom = strtok(NULL, "\n");
  char *useText = strtok(NULL, "\n");
  if (n == NULL || dom == NULL || useText == NULL) return fail(NERR_InternalError);
  int ok = put_wide(n, name, cchName);
  if (!put_wide(dom, domain, cchDomain)) ok = 0;
  if (!ok) return fail(ERROR_INSUFFICIENT_BUFFER);
  *use = (int32_t)strtol(useText, NULL, 10);
  return 1;
}
