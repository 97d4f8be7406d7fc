<#
.SYNOPSIS
  gmsa-gitops host script: observes (and in apply mode fixes) how gMSAs are put to work on this
  Windows host.

.DESCRIPTION
  Reads ONE JSON request (controller/hosts/contract.ts, HostRequest) and writes ONE JSON result
  (HostResult, or HostRequestError) as a single line on stdout; nothing else reaches stdout.
  Runs on Windows PowerShell 5.1 and PowerShell 7.

  Every value in the request is data: names are passed to cmdlets as parameter values or
  compared with -eq, never spliced into script text, WQL filters, provider paths or command
  lines, and never matched as wildcards. There is no Invoke-Expression and no string-built
  command anywhere in this file.

  The request arrives either as -RequestJson (the ssh bootstrap decodes it from stdin and passes
  it as a parameter value) or, without that parameter, on stdin (local agent).

  What it asks Windows, and through what:
    - the machine's LSA and SAM through P/Invoke (Add-Type, netapi32/advapi32):
      NetQueryServiceAccount, NetAddServiceAccount (installs a standalone MSA), LookupAccountName/Sid, NetLocalGroupGetMembers/AddMembers;
    - cmdlets: Get-CimInstance (Win32_Service, RSoP), Invoke-CimMethod, Restart-Service,
      Get-/Set-ScheduledTask, New-ScheduledTaskPrincipal; Test-ADServiceAccount only as the
      fallback when Add-Type is not allowed;
    - native commands: secedit, klist (exit code decides; stderr is kept as text);
    - IIS: Microsoft.Web.Administration.dll from %windir%\System32\inetsrv;
    - folders: Win32_LogicalDisk, Get-Item -LiteralPath, New-Item, DirectorySecurity and
      FileSystemAccessRule (System.Security.AccessControl), DirectoryInfo.SetAccessControl.
  All by their plain names and Windows' own signatures, so the Linux test doubles (a module on
  PSModulePath, native libraries on LD_LIBRARY_PATH, an assembly under $env:windir) stand in
  for them without any change to this file. controller/hosts/README.md lists the Windows
  behaviour each part relies on.
#>
param([string]$RequestJson)

$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$WarningPreference = 'SilentlyContinue'
$InformationPreference = 'SilentlyContinue'
$VerbosePreference = 'SilentlyContinue'
Set-StrictMode -Version Latest

# Must equal HOST_CONTRACT_VERSION in contract.ts.
$ContractVersion = 2

$LogonRights = @('SeServiceLogonRight', 'SeBatchLogonRight')
$RestartPolicies = @('OnChange', 'Never')
$RunLevels = @('Limited', 'Highest')
$FileRights = @('Read', 'ReadAndExecute', 'Write', 'Modify', 'FullControl')
$AppliesTo = @('ThisFolderOnly', 'ThisFolderSubfoldersAndFiles', 'SubfoldersAndFilesOnly')
$FileAccessPolicies = @('additive', 'exact')
# HostBinding fileSystemAccess[].path (crds/hostbindings.yaml): an absolute local folder in
# drive-letter form; no UNC or device path, no '.' or '..', no wildcard, no %VARIABLE%, no
# control character.
$FolderPattern = '^[A-Za-z]:\\([^\x00-\x1f<>:"/\\|?*%]*[^\x00-\x1f<>:"/\\|?*%. ](\\[^\x00-\x1f<>:"/\\|?*%]*[^\x00-\x1f<>:"/\\|?*%. ])*)?$'

# Win32_Service.Change return codes worth a name (the rest are reported as numbers).
$ServiceChangeCodes = @{
  2  = 'access denied'
  15 = 'the service logon failed'
  21 = 'invalid parameter'
  22 = 'invalid service account'
}

# ---------------------------------------------------------------------------------------------
# Request parsing: a strict, typed copy of the request. Anything unexpected is a BadRequest
# before anything on the host is read or changed.
# ---------------------------------------------------------------------------------------------

function New-RequestError([string]$Code, [string]$Message) {
  $e = New-Object System.ArgumentException $Message
  $e.Data['gmsaCode'] = $Code
  return $e
}

function Get-Field($Object, [string]$Name) {
  if ($Object -isnot [System.Management.Automation.PSCustomObject]) { return $null }
  $p = $Object.PSObject.Properties[$Name]
  if ($null -eq $p) { return $null }
  return , $p.Value
}

function Test-Field($Object, [string]$Name) {
  return ($Object -is [System.Management.Automation.PSCustomObject] -and $null -ne $Object.PSObject.Properties[$Name])
}

function Read-String($Object, [string]$Name, [string]$Where, [string]$Pattern, [int]$MaxLength = 1024) {
  $v = Get-Field $Object $Name
  if ($v -isnot [string] -or $v.Length -eq 0) { throw (New-RequestError 'BadRequest' "$Where.$Name must be a non-empty string") }
  if ($v.Length -gt $MaxLength) { throw (New-RequestError 'BadRequest' "$Where.$Name is longer than $MaxLength characters") }
  if ($Pattern -and $v -cnotmatch $Pattern) { throw (New-RequestError 'BadRequest' "$Where.$Name has characters it may not have") }
  return $v
}

function Read-Choice($Object, [string]$Name, [string]$Where, [string[]]$Allowed, [string]$Default) {
  if (-not (Test-Field $Object $Name)) { return $Default }
  $v = Get-Field $Object $Name
  if ($v -isnot [string] -or $Allowed -cnotcontains $v) {
    throw (New-RequestError 'BadRequest' "$Where.$Name must be one of $($Allowed -join ', ')")
  }
  return $v
}

function Read-Bool($Object, [string]$Name, [string]$Where) {
  if (-not (Test-Field $Object $Name)) { return $false }
  $v = Get-Field $Object $Name
  if ($v -isnot [bool]) { throw (New-RequestError 'BadRequest' "$Where.$Name must be true or false") }
  return $v
}

# Returns a List (never unrolled by the caller: lists are wrapped with the unary comma).
function Read-Array($Object, [string]$Name, [string]$Where) {
  $list = New-Object System.Collections.Generic.List[object]
  if (Test-Field $Object $Name) {
    $v = Get-Field $Object $Name
    if ($null -eq $v -or $v -isnot [array]) { throw (New-RequestError 'BadRequest' "$Where.$Name must be an array") }
    foreach ($x in $v) { $list.Add($x) }
  }
  return , $list
}

function Read-StringList($Object, [string]$Name, [string]$Where, [string[]]$Allowed) {
  $out = New-Object System.Collections.Generic.List[string]
  $i = 0
  foreach ($x in (Read-Array $Object $Name $Where)) {
    if ($x -isnot [string] -or $x.Length -eq 0 -or $x.Length -gt 256) {
      throw (New-RequestError 'BadRequest' "$Where.$Name[$i] must be a non-empty string of at most 256 characters")
    }
    if ($Allowed -and $Allowed -cnotcontains $x) { throw (New-RequestError 'BadRequest' "$Where.$Name[$i] must be one of $($Allowed -join ', ')") }
    $out.Add($x)
    $i++
  }
  return , $out
}

function Read-Request([string]$Json) {
  if ([string]::IsNullOrWhiteSpace($Json)) { throw (New-RequestError 'BadRequest' 'the request is empty') }
  try { $r = ConvertFrom-Json -InputObject $Json }
  catch { throw (New-RequestError 'BadRequest' "the request is not valid JSON: $($_.Exception.Message)") }
  if ($r -isnot [System.Management.Automation.PSCustomObject]) { throw (New-RequestError 'BadRequest' 'the request must be a JSON object') }

  $version = Get-Field $r 'version'
  if (($version -isnot [int] -and $version -isnot [long]) -or $version -ne $ContractVersion) {
    throw (New-RequestError 'UnsupportedVersion' "this script speaks contract version $ContractVersion, the request has version '$version'")
  }
  $req = @{
    Mode     = Read-Choice $r 'mode' 'request' @('observe', 'apply') $null
    Host     = Read-String $r 'host' 'request' '^[A-Za-z0-9_-]([A-Za-z0-9._-]*[A-Za-z0-9_-])?$' 15
    Domain   = Read-String $r 'domain' 'request' '^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$' 64
    Bindings = New-Object System.Collections.Generic.List[object]
  }
  if (-not $req.Mode) { throw (New-RequestError 'BadRequest' 'request.mode must be observe or apply') }

  $bi = 0
  foreach ($b in (Read-Array $r 'bindings' 'request')) {
    $w = "bindings[$bi]"
    if ($b -isnot [System.Management.Automation.PSCustomObject]) { throw (New-RequestError 'BadRequest' "$w must be an object") }
    $binding = @{
      Name                 = Read-String $b 'name' $w $null 253
      # sAMAccountName without '$': at most 15 characters (NetBIOS), no '$' of its own.
      Account              = Read-String $b 'account' $w '^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9_-])?$' 15
      # gmsa (absent: contract version 2's gMSA-only requests) or smsa, which is installed here.
      AccountKind          = Read-Choice $b 'accountKind' $w @('gmsa', 'smsa') 'gmsa'
      LocalGroups          = Read-StringList $b 'localGroups' $w $null
      LogonRights          = Read-StringList $b 'logonRights' $w $LogonRights
      RightsGrantedBefore  = Read-StringList $b 'rightsGrantedBefore' $w $LogonRights
      PurgeKerberosTickets = Read-Bool $b 'purgeKerberosTickets' $w
      RecentlyAllowed      = Read-Bool $b 'recentlyAllowed' $w
      ObserveOnly          = Read-Bool $b 'observeOnly' $w
      Services             = New-Object System.Collections.Generic.List[object]
      ScheduledTasks       = New-Object System.Collections.Generic.List[object]
      IisAppPools          = New-Object System.Collections.Generic.List[object]
      FileSystemAccess     = New-Object System.Collections.Generic.List[object]
      FileAccessPolicy     = Read-Choice $b 'fileSystemAccessPolicy' $w $FileAccessPolicies 'additive'
    }
    $i = 0
    foreach ($s in (Read-Array $b 'services' $w)) {
      $binding.Services.Add(@{
          Name    = Read-String $s 'name' "$w.services[$i]" $null 256
          Restart = Read-Choice $s 'restart' "$w.services[$i]" $RestartPolicies 'OnChange'
        })
      $i++
    }
    $i = 0
    foreach ($t in (Read-Array $b 'scheduledTasks' $w)) {
      $where = "$w.scheduledTasks[$i]"
      $path = '\'
      if (Test-Field $t 'path') { $path = Read-String $t 'path' $where '^\\([^\\/:*?"<>|]+\\)*$' 1024 }
      $binding.ScheduledTasks.Add(@{
          Name     = Read-String $t 'name' $where $null 238
          Path     = $path
          RunLevel = Read-Choice $t 'runLevel' $where $RunLevels 'Limited'
        })
      $i++
    }
    $i = 0
    foreach ($p in (Read-Array $b 'iisAppPools' $w)) {
      $binding.IisAppPools.Add(@{
          Name    = Read-String $p 'name' "$w.iisAppPools[$i]" $null 256
          Restart = Read-Choice $p 'restart' "$w.iisAppPools[$i]" $RestartPolicies 'OnChange'
        })
      $i++
    }
    $i = 0
    foreach ($f in (Read-Array $b 'fileSystemAccess' $w)) {
      $where = "$w.fileSystemAccess[$i]"
      $binding.FileSystemAccess.Add(@{
          Path            = Read-String $f 'path' $where $FolderPattern 247
          Rights          = Read-Choice $f 'rights' $where $FileRights $null
          AppliesTo       = Read-Choice $f 'appliesTo' $where $AppliesTo 'ThisFolderSubfoldersAndFiles'
          CreateIfMissing = Read-Bool $f 'createIfMissing' $where
        })
      if (-not $binding.FileSystemAccess[$i].Rights) { throw (New-RequestError 'BadRequest' "$where.rights must be one of $($FileRights -join ', ')") }
      $i++
    }
    # An observe request never changes anything; an apply request changes only the bindings
    # that are not observe-only (HostBinding spec.mode Observe).
    $binding.Mode = 'apply'
    if ($req.Mode -eq 'observe' -or $binding.ObserveOnly) { $binding.Mode = 'observe' }
    $req.Bindings.Add($binding)
    $bi++
  }
  return $req
}

# ---------------------------------------------------------------------------------------------
# Result items
# ---------------------------------------------------------------------------------------------

function New-ResultItem {
  param([string]$Item, [string]$Name, $Observed, $Desired, [string]$Action, [string]$Reason, [string]$ErrorText, $Restarted, [string]$Missing)
  $o = [ordered]@{ item = $Item; name = $Name; observed = $Observed; desired = $Desired; action = $Action }
  if ($Reason) { $o['reason'] = $Reason }
  if ($Missing) { $o['missing'] = $Missing }
  if ($null -ne $Restarted) { $o['restarted'] = [bool]$Restarted }
  if ($ErrorText) { $o['error'] = $ErrorText }
  return $o
}

# One line, bounded: error text goes into conditions and logs.
function Format-ErrorText($ErrorRecord) {
  $m = $ErrorRecord
  $e = $null
  if ($ErrorRecord -is [System.Management.Automation.ErrorRecord]) { $e = $ErrorRecord.Exception }
  elseif ($ErrorRecord -is [System.Exception]) { $e = $ErrorRecord }
  # A .NET method's exception comes wrapped ("Exception calling X with N argument(s)"): its own
  # message says more.
  while ($e -is [System.Management.Automation.MethodInvocationException] -and $null -ne $e.InnerException) { $e = $e.InnerException }
  if ($null -ne $e) { $m = $e.Message }
  $m = ([string]$m) -replace '\s+', ' '
  if ($m.Length -gt 500) { $m = $m.Substring(0, 500) + '...' }
  return $m.Trim()
}

# ---------------------------------------------------------------------------------------------
# Win32 through P/Invoke (Add-Type): the machine's own LSA and SAM, which a non-interactive ssh
# logon can ask without network credentials (no Kerberos double hop), with no RSAT module.
# C# 5 and .NET Framework 4.x APIs only: Windows PowerShell 5.1 compiles this with the
# Framework's csc. The helper calls the Win32 functions with Windows' own signatures.
# ---------------------------------------------------------------------------------------------

$NativeSource = @'
using System;
using System.ComponentModel;
using System.Runtime.InteropServices;
using System.Text;

namespace GmsaGitops
{
    public static class HostNative1
    {
        [DllImport("netapi32.dll", CharSet = CharSet.Unicode)]
        private static extern int NetQueryServiceAccount(string serverName, string accountName, uint infoLevel, out IntPtr buffer);

        // Exported by netapi32 (forwarded to logoncli); returns an NTSTATUS.
        [DllImport("netapi32.dll", CharSet = CharSet.Unicode)]
        private static extern int NetAddServiceAccount(string serverName, string accountName, string password, uint flags);

        [DllImport("netapi32.dll")]
        private static extern int NetApiBufferFree(IntPtr buffer);

        [DllImport("netapi32.dll", CharSet = CharSet.Unicode)]
        private static extern int NetLocalGroupGetMembers(string serverName, string localGroupName, int level, out IntPtr bufPtr, int prefMaxLen, out int entriesRead, out int totalEntries, IntPtr resumeHandle);

        [DllImport("netapi32.dll", CharSet = CharSet.Unicode)]
        private static extern int NetLocalGroupAddMembers(string serverName, string groupName, int level, IntPtr buf, int totalEntries);

        [DllImport("advapi32.dll", CharSet = CharSet.Unicode, SetLastError = true)]
        private static extern bool LookupAccountNameW(string systemName, string accountName, byte[] sid, ref int cbSid, StringBuilder domainName, ref int cchDomainName, out int use);

        [DllImport("advapi32.dll", CharSet = CharSet.Unicode, SetLastError = true)]
        private static extern bool LookupAccountSidW(string systemName, byte[] sid, StringBuilder name, ref int cchName, StringBuilder domainName, ref int cchDomainName, out int use);

        private const int ERROR_INSUFFICIENT_BUFFER = 122;
        private const int ERROR_NONE_MAPPED = 1332;
        private const int ERROR_MEMBER_IN_ALIAS = 1378;

        private static Exception Fail(string call, int code)
        {
            return new Win32Exception(code, call + " failed with error " + code + " (" + new Win32Exception(code).Message + ")");
        }

        // MSA_INFO_STATE of ACCOUNT$ as this machine's LSA sees it (it asks the DC as the computer).
        public static int QueryServiceAccount(string account)
        {
            IntPtr buffer;
            int status = NetQueryServiceAccount(null, account, 0, out buffer);
            if (status != 0) throw Fail("NetQueryServiceAccount", status);
            try { return Marshal.ReadInt32(buffer); }
            finally { NetApiBufferFree(buffer); }
        }

        // Installs the standalone MSA ACCOUNT$ on this machine, as Install-ADServiceAccount does: LSA
        // sets a new password in AD and keeps the secret locally. SERVICE_ACCOUNT_FLAG_LINK_TO_HOST_ONLY
        // (1): never create an account, only use an existing one.
        public static void AddServiceAccount(string account)
        {
            int status = NetAddServiceAccount(null, account, null, 1);
            if (status != 0)
                throw new InvalidOperationException("NetAddServiceAccount failed with NTSTATUS 0x" + status.ToString("X8"));
        }

        // The SID a name stands for (DOMAIN\name, name, UPN, BUILTIN\group), or null when none does.
        public static string NameToSid(string name)
        {
            byte[] sid = new byte[68];
            int cbSid = sid.Length;
            StringBuilder domain = new StringBuilder(256);
            int cchDomain = domain.Capacity;
            int use;
            if (!LookupAccountNameW(null, name, sid, ref cbSid, domain, ref cchDomain, out use))
            {
                int error = Marshal.GetLastWin32Error();
                if (error == ERROR_NONE_MAPPED) return null;
                if (error != ERROR_INSUFFICIENT_BUFFER) throw Fail("LookupAccountName", error);
                sid = new byte[cbSid];
                domain = new StringBuilder(cchDomain);
                if (!LookupAccountNameW(null, name, sid, ref cbSid, domain, ref cchDomain, out use))
                    throw Fail("LookupAccountName", Marshal.GetLastWin32Error());
            }
            return SidToString(sid, 0);
        }

        // The name of a SID, as { domain, name }, or null when it does not resolve (an orphan).
        public static string[] SidToName(string sidText)
        {
            byte[] sid = SidFromString(sidText);
            StringBuilder name = new StringBuilder(256);
            StringBuilder domain = new StringBuilder(256);
            int cchName = name.Capacity;
            int cchDomain = domain.Capacity;
            int use;
            if (!LookupAccountSidW(null, sid, name, ref cchName, domain, ref cchDomain, out use))
            {
                int error = Marshal.GetLastWin32Error();
                if (error == ERROR_NONE_MAPPED) return null;
                if (error != ERROR_INSUFFICIENT_BUFFER) throw Fail("LookupAccountSid", error);
                name = new StringBuilder(cchName);
                domain = new StringBuilder(cchDomain);
                if (!LookupAccountSidW(null, sid, name, ref cchName, domain, ref cchDomain, out use))
                    throw Fail("LookupAccountSid", Marshal.GetLastWin32Error());
            }
            return new string[] { domain.ToString(), name.ToString() };
        }

        // The SIDs of a local group's members (level 0: SIDs only, so orphaned SIDs are listed too).
        public static string[] LocalGroupMembers(string group)
        {
            IntPtr buffer;
            int read;
            int total;
            int status = NetLocalGroupGetMembers(null, group, 0, out buffer, -1, out read, out total, IntPtr.Zero);
            if (status != 0) throw Fail("NetLocalGroupGetMembers", status);
            try
            {
                string[] sids = new string[read];
                for (int i = 0; i < read; i++)
                {
                    IntPtr psid = Marshal.ReadIntPtr(buffer, i * IntPtr.Size);
                    byte[] head = new byte[8];
                    Marshal.Copy(psid, head, 0, 8);
                    byte[] sid = new byte[8 + 4 * head[1]];
                    Marshal.Copy(psid, sid, 0, sid.Length);
                    sids[i] = SidToString(sid, 0);
                }
                return sids;
            }
            finally { NetApiBufferFree(buffer); }
        }

        // Adds a member by SID; false when it already was one.
        public static bool LocalGroupAddMember(string group, string sidText)
        {
            byte[] sid = SidFromString(sidText);
            IntPtr block = Marshal.AllocHGlobal(IntPtr.Size + sid.Length);
            try
            {
                IntPtr psid = IntPtr.Add(block, IntPtr.Size);
                Marshal.Copy(sid, 0, psid, sid.Length);
                Marshal.WriteIntPtr(block, psid);
                int status = NetLocalGroupAddMembers(null, group, 0, block, 1);
                if (status == ERROR_MEMBER_IN_ALIAS) return false;
                if (status != 0) throw Fail("NetLocalGroupAddMembers", status);
                return true;
            }
            finally { Marshal.FreeHGlobal(block); }
        }

        public static string SidToString(byte[] sid, int offset)
        {
            ulong authority = 0;
            for (int i = 2; i < 8; i++) authority = (authority << 8) | sid[offset + i];
            StringBuilder sb = new StringBuilder("S-" + sid[offset] + "-" + authority);
            for (int i = 0; i < sid[offset + 1]; i++)
                sb.Append("-").Append(BitConverter.ToUInt32(sid, offset + 8 + 4 * i));
            return sb.ToString();
        }

        public static byte[] SidFromString(string text)
        {
            string[] parts = text.Split('-');
            if (parts.Length < 3 || parts[0] != "S" || parts[1] != "1") throw new ArgumentException("not a SID: " + text);
            int count = parts.Length - 3;
            byte[] sid = new byte[8 + 4 * count];
            ulong authority = ulong.Parse(parts[2], System.Globalization.CultureInfo.InvariantCulture);
            sid[0] = 1;
            sid[1] = (byte)count;
            for (int i = 0; i < 6; i++) sid[2 + i] = (byte)(authority >> (8 * (5 - i)));
            for (int i = 0; i < count; i++)
            {
                uint sub = uint.Parse(parts[3 + i], System.Globalization.CultureInfo.InvariantCulture);
                byte[] b = BitConverter.GetBytes(sub);
                Array.Copy(b, 0, sid, 8 + 4 * i, 4);
            }
            return sid;
        }
    }
}
'@

# Compiling costs seconds (csc on 5.1, Roslyn on 7), so the assembly is kept per source and
# PowerShell edition in the user's LocalApplicationData, which only that user (SYSTEM: only
# administrators) can write; never in %TEMP%, which for SYSTEM is C:\Windows\Temp, where any
# user could plant a DLL under the predictable name.
function Import-NativeHelper {
  if ('GmsaGitops.HostNative1' -as [type]) { return }
  $sha = [System.Security.Cryptography.SHA256]::Create()
  try { $hash = [System.BitConverter]::ToString($sha.ComputeHash([System.Text.Encoding]::UTF8.GetBytes($NativeSource))).Replace('-', '').Substring(0, 16) }
  finally { $sha.Dispose() }
  $dir = [System.IO.Path]::Combine([Environment]::GetFolderPath('LocalApplicationData'), 'gmsa-gitops')
  $dll = [System.IO.Path]::Combine($dir, "native-$hash-$($PSVersionTable.PSEdition).dll")
  if (-not [System.IO.File]::Exists($dll)) {
    $null = [System.IO.Directory]::CreateDirectory($dir)
    $tmp = "$dll.$PID.tmp"
    Add-Type -TypeDefinition $NativeSource -Language CSharp -OutputAssembly $tmp -OutputType Library
    try { [System.IO.File]::Move($tmp, $dll) }
    catch { try { [System.IO.File]::Delete($tmp) } catch { $null = $_ }; if (-not [System.IO.File]::Exists($dll)) { throw } }
  }
  Add-Type -Path $dll
}

# Loads the helper once per process. False when P/Invoke is not allowed here (no compiler, or
# a policy blocks Add-Type): the script then falls back (see Test-Account) and compares names.
function Initialize-Native($Ctx) {
  if ($null -eq $Ctx.Native) {
    try {
      Import-NativeHelper
      $Ctx.Native = $true
    }
    catch {
      $Ctx.Native = $false
      $Ctx.NativeError = Format-ErrorText $_
    }
  }
  return $Ctx.Native
}

# ---------------------------------------------------------------------------------------------
# Identities: compared by SID. Windows shows one principal as acct$, DOMAIN\acct$, a UPN or a
# SID depending on the API and the version; only the SID is the same everywhere.
# ---------------------------------------------------------------------------------------------

# The SID of a name or SID string, or $null when it does not resolve (cached per run).
function Resolve-Sid([string]$Text, $Ctx) {
  if ([string]::IsNullOrEmpty($Text)) { return $null }
  $t = $Text.TrimStart('*')
  if ($t -match '^S-1-\d+(-\d+)+$') { return $t.ToUpperInvariant() }
  if (-not (Initialize-Native $Ctx)) { return $null }
  if (-not $Ctx.Sids.ContainsKey($t)) { $Ctx.Sids[$t] = [GmsaGitops.HostNative1]::NameToSid($t) }
  return $Ctx.Sids[$t]
}

# The gMSA's SID (throws when the domain does not know the account: nothing can be compared).
function Get-AccountSid($B, $Ctx) {
  return Resolve-Sid "$($Ctx.Domain)\$($B.Account)`$" $Ctx
}

# Observed principal vs the binding's account: by SID when both resolve; by name otherwise
# (P/Invoke not allowed), accepting DOMAIN\acct$, acct$ and acct$@<any DNS domain>.
function Test-SameIdentity([string]$Observed, $Ctx, $B) {
  if ([string]::IsNullOrEmpty($Observed)) { return $false }
  $want = Get-AccountSid $B $Ctx
  if ($want) {
    $got = Resolve-Sid $Observed $Ctx
    if ($got) { return ($got -eq $want) }
  }
  $name = "$($B.Account)`$"
  return ($Observed -eq "$($Ctx.Domain)\$name" -or $Observed -eq $name -or $Observed.StartsWith("$name@", [System.StringComparison]::OrdinalIgnoreCase))
}

# ---------------------------------------------------------------------------------------------
# Native commands (secedit, klist). Windows PowerShell 5.1 turns a native command's redirected
# stderr line into an error record, which $ErrorActionPreference = 'Stop' makes terminating, so
# the exit code would be lost: run them with 'Continue', keep stderr as text, and decide on
# $LASTEXITCODE alone.
# ---------------------------------------------------------------------------------------------

function Invoke-Native([string]$Exe, [string[]]$ArgList, [int[]]$OkCodes = @(0)) {
  $global:LASTEXITCODE = 0
  $lines = New-Object System.Collections.Generic.List[string]
  $eap = $ErrorActionPreference
  $ErrorActionPreference = 'Continue'
  try {
    foreach ($o in @(& $Exe @ArgList 2>&1)) {
      if ($o -is [System.Management.Automation.ErrorRecord]) { $lines.Add([string]$o.Exception.Message) }
      else { $lines.Add([string]$o) }
    }
  }
  finally { $ErrorActionPreference = $eap }
  $code = [int]$LASTEXITCODE
  $text = Format-ErrorText (($lines | Where-Object { $_.Trim().Length -gt 0 }) -join ' ')
  if ($OkCodes -notcontains $code) {
    if ($text) { throw "$Exe $($ArgList[0]) failed with exit code ${code}: $text" }
    throw "$Exe $($ArgList[0]) failed with exit code $code"
  }
  return @{ Code = $code; Text = $text }
}

# ---------------------------------------------------------------------------------------------
# Retrievability (NetQueryServiceAccount) and the fresh-ticket wait
# ---------------------------------------------------------------------------------------------

# MSA_INFO_STATE (lmaccess.h)
$MsaInfoNotExist = 1
$MsaInfoNotService = 2
$MsaInfoCannotInstall = 3
$MsaInfoCanInstall = 4
$MsaInfoInstalled = 5

# Returns the MSA_INFO_STATE. NetQueryServiceAccount runs in LSA as the computer account: it
# needs neither RSAT nor ADWS nor the caller's network credentials (an ssh key logon has none).
# Only when P/Invoke is not allowed: Test-ADServiceAccount (RSAT-AD-PowerShell, ADWS, which an
# ssh key logon cannot reach without credential delegation; the local agent as SYSTEM can).
function Test-Account([string]$Account, $Ctx) {
  if (Initialize-Native $Ctx) { return [GmsaGitops.HostNative1]::QueryServiceAccount("$Account`$") }
  $r = @(Test-ADServiceAccount -Identity $Account -WarningAction SilentlyContinue)
  if ($r.Count -eq 0) { throw "Test-ADServiceAccount returned nothing (P/Invoke is not allowed here: $($Ctx.NativeError))" }
  if ($r[$r.Count - 1] -eq $true) { return $MsaInfoInstalled }
  return $MsaInfoCannotInstall
}

# The states in which no managed account of that name can be used here: reported as a failed
# item (true), whatever the account's kind.
function Add-UnusableAccount([string]$Item, [string]$Account, $State, $Items) {
  if ($State -eq $MsaInfoNotExist) {
    $Items.Add((New-ResultItem -Item $Item -Name $Account -Observed $false -Desired $true -Action 'failed' -Reason 'NotFound' `
          -ErrorText "this host's domain controller knows no account '$Account`$' (MsaInfoNotExist)"))
    return $true
  }
  if ($State -eq $MsaInfoNotService) {
    $Items.Add((New-ResultItem -Item $Item -Name $Account -Observed $false -Desired $true -Action 'failed' -Reason 'Error' `
          -ErrorText "'$Account`$' is not a managed service account (MsaInfoNotService)"))
    return $true
  }
  return $false
}

# A standalone MSA (sMSA) must be installed on its one computer before a service can run as it.
# NetQueryServiceAccount answers MsaInfoCanInstall for an sMSA this computer may install (linked
# here, or to no computer), MsaInfoInstalled once it is installed, and MsaInfoCannotInstall for
# one linked to another computer, which Windows refuses to install here (Test-ADServiceAccount:
# "the account is linked to another computer object"). Returns $true when installed.
function Invoke-Install($B, $Ctx, $Items) {
  $account = $B.Account
  try {
    if (-not (Initialize-Native $Ctx)) {
      throw "installing a standalone managed service account needs P/Invoke (NetQueryServiceAccount, NetAddServiceAccount), which is not allowed here: $($Ctx.NativeError)"
    }
    $state = Test-Account $account $Ctx
    if ($state -eq $MsaInfoInstalled) {
      $Items.Add((New-ResultItem -Item 'install' -Name $account -Observed $true -Desired $true -Action 'none'))
      return $true
    }
    if (Add-UnusableAccount 'install' $account $state $Items) { return $false }
    if ($state -eq $MsaInfoCannotInstall) {
      $Items.Add((New-ResultItem -Item 'install' -Name $account -Observed $false -Desired $true -Action 'failed' -Reason 'LinkedToAnotherComputer' `
            -ErrorText "Windows refuses to install the standalone account '$account`$' on $($env:COMPUTERNAME) (MsaInfoCannotInstall): AD links it to another computer (msDS-HostServiceAccount), while the manifest restricts it to $($Ctx.Host); nothing was changed on this host"))
      return $false
    }
    if ($state -ne $MsaInfoCanInstall) { throw "NetQueryServiceAccount returned the unknown state $state" }
    if ($B.Mode -ne 'apply') {
      $Items.Add((New-ResultItem -Item 'install' -Name $account -Observed $false -Desired $true -Action 'would-change' -Reason 'NotInstalled'))
      return $false
    }
    [GmsaGitops.HostNative1]::AddServiceAccount("$account`$")
    $after = Test-Account $account $Ctx
    if ($after -ne $MsaInfoInstalled) { throw "NetAddServiceAccount returned, but NetQueryServiceAccount answers state $after, not MsaInfoInstalled" }
    $Items.Add((New-ResultItem -Item 'install' -Name $account -Observed $false -Desired $true -Action 'changed' -Reason 'NotInstalled'))
    return $true
  }
  catch {
    $Items.Add((New-ResultItem -Item 'install' -Name $account -Observed $null -Desired $true -Action 'failed' -Reason 'Error' -ErrorText (Format-ErrorText $_)))
    return $false
  }
}

function Invoke-TicketPurge {
  # LUID 0x3e7 is the machine account (SYSTEM): its TGT still carries the groups the computer
  # belonged to when it was issued, so a host just added to the allowed group needs a new one.
  $null = Invoke-Native 'klist' @('-li', '0x3e7', 'purge')
}

function Invoke-Retrievable($B, $Ctx, $Items) {
  $account = $B.Account
  try {
    $state = Test-Account $account $Ctx
    if ($state -eq $MsaInfoCanInstall -or $state -eq $MsaInfoInstalled) {
      $Items.Add((New-ResultItem -Item 'retrievable' -Name $account -Observed $true -Desired $true -Action 'none'))
      return $true
    }
    if (Add-UnusableAccount 'retrievable' $account $state $Items) { return $false }
    if ($state -ne $MsaInfoCannotInstall) { throw "NetQueryServiceAccount returned the unknown state $state" }
    if (-not $B.RecentlyAllowed) {
      $Items.Add((New-ResultItem -Item 'retrievable' -Name $account -Observed $false -Desired $true -Action 'failed' -Reason 'NotRetrievable' `
            -ErrorText 'this host may not retrieve the password: it is not allowed by the gMSA''s msDS-GroupMSAMembership (directly or through a group), or it does not support the account''s Kerberos encryption types'))
      return $false
    }
    if ($B.Mode -eq 'apply' -and $B.PurgeKerberosTickets) {
      Invoke-TicketPurge
      $state = Test-Account $account $Ctx
      if ($state -eq $MsaInfoCanInstall -or $state -eq $MsaInfoInstalled) {
        $Items.Add((New-ResultItem -Item 'retrievable' -Name $account -Observed $false -Desired $true -Action 'changed' -Reason 'TicketNotRefreshed'))
        return $true
      }
    }
    $Items.Add((New-ResultItem -Item 'retrievable' -Name $account -Observed $false -Desired $true -Action 'pending' -Reason 'TicketNotRefreshed'))
    return 'pending'
  }
  catch {
    $Items.Add((New-ResultItem -Item 'retrievable' -Name $account -Observed $null -Desired $true -Action 'failed' -Reason 'Error' -ErrorText (Format-ErrorText $_)))
    return $false
  }
}

# ---------------------------------------------------------------------------------------------
# Local groups: by SID (NetLocalGroupGetMembers level 0 lists SIDs, orphaned ones included,
# where Get-LocalGroupMember throws). A group is named by its name on this host, its SID, or
# the English name of a built-in group, which is resolved through its well-known SID (on a
# German server "Administrators" is "Administratoren").
# ---------------------------------------------------------------------------------------------

$BuiltinGroupSids = @{
  'Administrators'                      = 'S-1-5-32-544'
  'Users'                               = 'S-1-5-32-545'
  'Guests'                              = 'S-1-5-32-546'
  'Power Users'                         = 'S-1-5-32-547'
  'Backup Operators'                    = 'S-1-5-32-551'
  'Replicator'                          = 'S-1-5-32-552'
  'Remote Desktop Users'                = 'S-1-5-32-555'
  'Network Configuration Operators'     = 'S-1-5-32-556'
  'Performance Monitor Users'           = 'S-1-5-32-558'
  'Performance Log Users'               = 'S-1-5-32-559'
  'Distributed COM Users'               = 'S-1-5-32-562'
  'IIS_IUSRS'                           = 'S-1-5-32-568'
  'Cryptographic Operators'             = 'S-1-5-32-569'
  'Event Log Readers'                   = 'S-1-5-32-573'
  'Certificate Service DCOM Access'     = 'S-1-5-32-574'
  'RDS Remote Access Servers'           = 'S-1-5-32-575'
  'RDS Endpoint Servers'                = 'S-1-5-32-576'
  'RDS Management Servers'              = 'S-1-5-32-577'
  'Hyper-V Administrators'              = 'S-1-5-32-578'
  'Access Control Assistance Operators' = 'S-1-5-32-579'
  'Remote Management Users'             = 'S-1-5-32-580'
  'Storage Replica Administrators'      = 'S-1-5-32-582'
}

# The group's name on this host (what the NetLocalGroup* calls take).
function Resolve-LocalGroupName([string]$Group) {
  $sid = $null
  if ($Group -match '^S-1-5-32-\d+$') { $sid = $Group }
  else { foreach ($k in $BuiltinGroupSids.Keys) { if ($k -eq $Group) { $sid = $BuiltinGroupSids[$k] } } }
  if (-not $sid) { return $Group }
  $n = [GmsaGitops.HostNative1]::SidToName($sid)
  if ($null -eq $n) { throw "this host has no local group with the SID $sid ($Group)" }
  return $n[1]
}

function Invoke-LocalGroup([string]$Group, $B, $Ctx, $Items) {
  try {
    if (-not (Initialize-Native $Ctx)) { throw "local groups need P/Invoke, which is not allowed here: $($Ctx.NativeError)" }
    $sid = Get-AccountSid $B $Ctx
    if (-not $sid) { throw "the account $($Ctx.Domain)\$($B.Account)`$ does not resolve to a SID on this host" }
    $local = Resolve-LocalGroupName $Group
    $members = @([GmsaGitops.HostNative1]::LocalGroupMembers($local))
    if ($members -contains $sid) {
      $Items.Add((New-ResultItem -Item 'localGroup' -Name $Group -Observed $true -Desired $true -Action 'none'))
    }
    elseif ($B.Mode -eq 'observe') {
      $Items.Add((New-ResultItem -Item 'localGroup' -Name $Group -Observed $false -Desired $true -Action 'would-change' -Reason 'NotMember'))
    }
    else {
      $null = [GmsaGitops.HostNative1]::LocalGroupAddMember($local, $sid)
      $Items.Add((New-ResultItem -Item 'localGroup' -Name $Group -Observed $false -Desired $true -Action 'changed' -Reason 'NotMember'))
    }
  }
  catch {
    $Items.Add((New-ResultItem -Item 'localGroup' -Name $Group -Observed $null -Desired $true -Action 'failed' -Reason 'Error' -ErrorText (Format-ErrorText $_)))
  }
}

# ---------------------------------------------------------------------------------------------
# Logon rights through the security policy (secedit export / configure), after asking RSoP
# whether a GPO defines the right (a GPO's list wins at the next policy refresh, so a local
# write would only flap)
# ---------------------------------------------------------------------------------------------

# Each logon right and the right that denies it (deny wins over allow).
$DenyRights = @{ SeServiceLogonRight = 'SeDenyServiceLogonRight'; SeBatchLogonRight = 'SeDenyBatchLogonRight' }

# secedit's exit code 3: "warnings occurred for some attributes" (typically an entry it could
# not resolve, on a right we did not touch); the read-back decides whether ours is in place.
$SeceditOkCodes = @(0, 3)

function New-WorkDir {
  # .NET calls rather than New-Item/Remove-Item: the same on both PowerShells, and cheaper to start.
  $dir = [System.IO.Path]::Combine([System.IO.Path]::GetTempPath(), 'gmsa-host-' + [guid]::NewGuid().ToString('N'))
  $null = [System.IO.Directory]::CreateDirectory($dir)
  return $dir
}

function Remove-WorkDir([string]$Dir) {
  try { [System.IO.Directory]::Delete($Dir, $true) } catch { $null = $_ }
}

# Returns a hashtable: right name -> List[string] of entries ('*S-1-5-...' or 'DOMAIN\name').
function Get-UserRights {
  $dir = New-WorkDir
  try {
    $cfg = [System.IO.Path]::Combine($dir, 'rights.inf')
    $null = Invoke-Native 'secedit' @('/export', '/cfg', $cfg, '/areas', 'USER_RIGHTS', '/quiet') $SeceditOkCodes
    $rights = @{}
    $inSection = $false
    foreach ($line in [System.IO.File]::ReadAllLines($cfg)) {
      $t = $line.Trim()
      if ($t.StartsWith('[')) { $inSection = ($t -eq '[Privilege Rights]'); continue }
      if (-not $inSection -or $t.Length -eq 0) { continue }
      $eq = $t.IndexOf('=')
      if ($eq -lt 1) { continue }
      $list = New-Object System.Collections.Generic.List[string]
      foreach ($e in $t.Substring($eq + 1).Split(',')) { if ($e.Trim().Length -gt 0) { $list.Add($e.Trim()) } }
      $rights[$t.Substring(0, $eq).Trim()] = $list
    }
    return $rights
  }
  finally { Remove-WorkDir $dir }
}

# Sets one right to exactly $Entries (secedit replaces a listed right's holders).
function Set-UserRight([string]$Right, $Entries) {
  $dir = New-WorkDir
  try {
    $cfg = [System.IO.Path]::Combine($dir, 'rights.inf')
    $db = [System.IO.Path]::Combine($dir, 'rights.sdb')
    $text = "[Unicode]`r`nUnicode=yes`r`n[Version]`r`nsignature=`"`$CHICAGO`$`"`r`nRevision=1`r`n[Privilege Rights]`r`n$Right = $($Entries -join ',')`r`n"
    [System.IO.File]::WriteAllText($cfg, $text, [System.Text.Encoding]::Unicode)
    $null = Invoke-Native 'secedit' @('/configure', '/db', $db, '/cfg', $cfg, '/areas', 'USER_RIGHTS', '/quiet') $SeceditOkCodes
  }
  finally { Remove-WorkDir $dir }
}

function Test-HoldsRight($Entries, $B, $Ctx) {
  foreach ($e in $Entries) { if (Test-SameIdentity ([string]$e) $Ctx $B) { return $true } }
  return $false
}

# Rights a GPO defines on this host: right -> @{ Gpo = name; Accounts = entries }, from RSoP
# (RSOP_UserPrivilegeRight, precedence 1 = the winning GPO). A host that never applied a GPO has
# no RSoP namespace: nothing is defined by policy then.
function Get-PolicyRights($Ctx) {
  if ($null -eq $Ctx.PolicyRights) {
    $map = @{}
    $gpoNames = @{}
    try { $rows = @(Get-CimInstance -Namespace 'root\rsop\computer' -ClassName RSOP_UserPrivilegeRight) }
    catch {
      $rows = @()
      if ((Format-ErrorText $_) -notmatch 'Invalid namespace') { $Ctx.PolicyRightsError = Format-ErrorText $_ }
    }
    if ($rows.Count -gt 0) {
      foreach ($g in @(Get-CimInstance -Namespace 'root\rsop\computer' -ClassName RSOP_GPO)) { $gpoNames[[string]$g.id] = [string]$g.name }
    }
    foreach ($r in $rows) {
      if ([int]$r.precedence -ne 1) { continue }
      $gpo = [string]$r.GPOID
      if ($gpoNames.ContainsKey($gpo)) { $gpo = $gpoNames[$gpo] }
      $map[[string]$r.UserRight] = @{ Gpo = $gpo; Accounts = @($r.AccountList) }
    }
    $Ctx.PolicyRights = $map
  }
  return $Ctx.PolicyRights
}

function Invoke-LogonRight([string]$Right, $Identity, $B, $Ctx, $Items) {
  try {
    $rights = Get-UserRights
    $policy = Get-PolicyRights $Ctx
    if ($Ctx.PolicyRightsError) { throw "cannot read group policy (RSoP): $($Ctx.PolicyRightsError)" }
    $entries = New-Object System.Collections.Generic.List[string]
    if ($rights.ContainsKey($Right)) { $entries = $rights[$Right] }
    $holds = Test-HoldsRight $entries $B $Ctx
    $deny = $DenyRights[$Right]
    if ($rights.ContainsKey($deny) -and (Test-HoldsRight $rights[$deny] $B $Ctx)) {
      $Items.Add((New-ResultItem -Item 'logonRight' -Name $deny -Observed $true -Desired $false -Action 'failed' -Reason 'DeniedByPolicy' `
            -ErrorText "$deny lists $Identity, and a deny right wins over $Right; remove it there (usually a GPO)"))
    }
    if ($policy.ContainsKey($Right)) {
      $gpo = $policy[$Right]
      if (Test-HoldsRight $gpo.Accounts $B $Ctx) {
        $Items.Add((New-ResultItem -Item 'logonRight' -Name $Right -Observed $holds -Desired $true -Action 'none'))
        return
      }
      # Never written: secedit would change LSA now, and the GPO would put its list back at the
      # next refresh (up to 16 hours later), so the right would flap.
      $Items.Add((New-ResultItem -Item 'logonRight' -Name $Right -Observed $holds -Desired $true -Action 'failed' -Reason 'DefinedByPolicy' `
            -ErrorText "$Right is defined by the GPO '$($gpo.Gpo)', which does not list $Identity; add it to that GPO (a local change would be undone at the next policy refresh)"))
      return
    }
    if ($holds) {
      $Items.Add((New-ResultItem -Item 'logonRight' -Name $Right -Observed $true -Desired $true -Action 'none'))
      return
    }
    # A right this binding held before but not now was taken away after it was granted: almost
    # always a GPO that sets the right's holder list (ATADocs #586). Its own reason, so it can
    # alert differently from a right that was never granted.
    $reason = 'Missing'
    if ($B.RightsGrantedBefore -contains $Right) { $reason = 'RevokedByPolicy' }
    if ($B.Mode -eq 'observe') {
      $Items.Add((New-ResultItem -Item 'logonRight' -Name $Right -Observed $false -Desired $true -Action 'would-change' -Reason $reason))
      return
    }
    $sid = Get-AccountSid $B $Ctx
    $entry = $Identity
    if ($sid) { $entry = "*$sid" }
    $new = New-Object System.Collections.Generic.List[string]
    foreach ($e in $entries) { $new.Add($e) }
    $new.Add($entry)
    Set-UserRight $Right $new
    # Read back: secedit can end "with warnings" and still have set nothing.
    $after = Get-UserRights
    if (-not ($after.ContainsKey($Right) -and (Test-HoldsRight $after[$Right] $B $Ctx))) {
      throw "secedit reported success but $Right does not list $Identity afterwards"
    }
    $Items.Add((New-ResultItem -Item 'logonRight' -Name $Right -Observed $false -Desired $true -Action 'changed' -Reason $reason))
  }
  catch {
    $Items.Add((New-ResultItem -Item 'logonRight' -Name $Right -Observed $null -Desired $true -Action 'failed' -Reason 'Error' -ErrorText (Format-ErrorText $_)))
  }
}

# ---------------------------------------------------------------------------------------------
# Folder permissions (HostBinding fileSystemAccess): the account's explicit allow entries in a
# folder's DACL, read and written with System.Security.AccessControl (DirectorySecurity,
# FileSystemAccessRule), which Windows PowerShell 5.1 and PowerShell 7 both have. Only the DACL
# is read (AccessControlSections.Access) and written (Write-FolderAcl), so the owner and the
# SACL (audit entries) are never changed. Not Set-Acl: it writes every section, so an object
# without a SACL would empty the folder's SACL when run elevated, and fail with "does not possess
# the 'SeSecurityPrivilege' privilege" on a folder whose inheritance is disabled otherwise. Entries of other principals and inherited entries are never touched: AddAccessRule
# and SetAccessRule change the explicit entries of the rule's own identity only, and Windows
# recomputes inherited entries from the parent. A junction or symbolic link anywhere on the path,
# or a volume without NTFS ACLs, is reported and never followed.
# ---------------------------------------------------------------------------------------------

# "Applies to" in the Advanced Security dialog -> InheritanceFlags, PropagationFlags, and the
# scopes an entry reaches: this folder (F), subfolders (S), files (L).
$AppliesToFlags = @{
  ThisFolderOnly               = @{ Inheritance = 'None'; Propagation = 'None'; Scopes = 'F'; Text = 'this folder only' }
  ThisFolderSubfoldersAndFiles = @{ Inheritance = 'ContainerInherit, ObjectInherit'; Propagation = 'None'; Scopes = 'FSL'; Text = 'this folder, subfolders and files' }
  SubfoldersAndFilesOnly       = @{ Inheritance = 'ContainerInherit, ObjectInherit'; Propagation = 'InheritOnly'; Scopes = 'SL'; Text = 'subfolders and files only' }
}
$ScopeNames = @{ F = 'this folder'; S = 'subfolders'; L = 'files' }
# Synchronize rides along with every allow entry .NET writes; it is no right anyone declares.
$SynchronizeRight = 0x100000

# The specific rights an entry's mask stands for: generic bits (GENERIC_ALL and friends, common
# on CREATOR OWNER entries and ones icacls wrote) mapped as the file system maps them.
function Get-SpecificMask([long]$Mask) {
  $m = $Mask -band 0xFFFFFFFFL
  $out = $m -band 0x0FFFFFFFL
  if ($m -band 0x10000000L) { $out = $out -bor 0x1F01FF }
  if ($m -band 0x20000000L) { $out = $out -bor 0x1200A0 }
  if ($m -band 0x40000000L) { $out = $out -bor 0x120116 }
  if ($m -band 0x80000000L) { $out = $out -bor 0x120089 }
  return ($out -band (-bnot $SynchronizeRight))
}

# The mask in FileSystemRights names ("Modify", "Write, Delete"), Synchronize left out. It is
# added before formatting so that a full set (FullControl includes it) keeps its own name.
function Format-Rights([long]$Mask) {
  if ($Mask -eq 0) { return 'nothing' }
  $names = ([System.Security.AccessControl.FileSystemRights][int]($Mask -bor $SynchronizeRight)).ToString().Split(',')
  return ((@(foreach ($n in $names) { if ($n.Trim() -ne 'Synchronize') { $n.Trim() } })) -join ', ')
}

# The scopes an ACE reaches. NoPropagateInherit reaches only the folder's direct children, so it
# is not counted for subfolders and files at depth (a declared entry must reach them all).
function Get-AceScopes($Rule) {
  $inh = [int]$Rule.InheritanceFlags
  $prop = [int]$Rule.PropagationFlags
  $scopes = ''
  if (-not ($prop -band 2)) { $scopes += 'F' }
  if (-not ($prop -band 1)) {
    if ($inh -band 1) { $scopes += 'S' }
    if ($inh -band 2) { $scopes += 'L' }
  }
  return $scopes
}

function Format-AceList($Rules) {
  $parts = @(foreach ($r in $Rules) {
      $text = 'custom inheritance'
      foreach ($k in $AppliesToFlags.Keys) {
        $f = $AppliesToFlags[$k]
        if ([int]$r.InheritanceFlags -eq [int][System.Security.AccessControl.InheritanceFlags]$f.Inheritance -and [int]$r.PropagationFlags -eq [int][System.Security.AccessControl.PropagationFlags]$f.Propagation) { $text = $f.Text }
      }
      "$(Format-Rights (Get-SpecificMask ([long][int]$r.FileSystemRights))) ($text)"
    })
  if ($parts.Count -eq 0) { return 'no explicit entry' }
  return ($parts -join '; ')
}

# Win32_LogicalDisk, enumerated once per run and matched with -eq: the drive's file system
# (DriveInfo.DriveFormat; NTFS and ReFS keep ACLs, FAT32 and exFAT do not) and its type.
function Get-DiskList($Ctx) {
  if ($null -eq $Ctx.Disks) { $Ctx.Disks = @(Get-CimInstance -ClassName Win32_LogicalDisk) }
  return , $Ctx.Disks
}

# $null when the folder may be worked on, else @{ Reason; Text }. Sets $State.Exists.
function Test-FolderPath([string]$Path, $Ctx, $State) {
  $drive = $Path.Substring(0, 2).ToUpperInvariant()
  $disk = @(foreach ($d in (Get-DiskList $Ctx)) { if ([string]$d.DeviceID -eq $drive) { $d } })
  if ($disk.Count -eq 0) { return @{ Reason = 'NotFound'; Text = "this host has no drive $drive" } }
  $fs = [string]$disk[0].FileSystem
  if ([int]$disk[0].DriveType -eq 4) { return @{ Reason = 'UnsupportedVolume'; Text = "$drive is a network drive; grant access on the file server itself" } }
  if ($fs -ne 'NTFS' -and $fs -ne 'ReFS') {
    if (-not $fs) { $fs = 'no file system (no media)' }
    return @{ Reason = 'UnsupportedVolume'; Text = "$drive is $fs; only NTFS and ReFS volumes keep permissions per folder" }
  }
  # Every existing component from the drive root down, each looked at itself (-LiteralPath,
  # -Force): a junction or symbolic link anywhere would send the change somewhere else.
  $prefix = $Path.Substring(0, 3)
  $components = @($prefix)
  if ($Path.Length -gt 3) {
    foreach ($part in $Path.Substring(3).Split('\')) {
      if ($prefix.EndsWith('\')) { $prefix = $prefix + $part } else { $prefix = $prefix + '\' + $part }
      $components += $prefix
    }
  }
  $State.Exists = $true
  foreach ($c in $components) {
    $item = Get-Item -LiteralPath $c -Force -ErrorAction SilentlyContinue
    if ($null -eq $item) { $State.Exists = $false; return $null }
    if (([int]$item.Attributes -band [int][System.IO.FileAttributes]::ReparsePoint) -ne 0) {
      $kind = 'a reparse point'
      if ($item.PSObject.Properties['LinkType'] -and $item.LinkType) { $kind = "a $(([string]$item.LinkType).ToLowerInvariant())" }
      $to = ''
      if ($item.PSObject.Properties['Target'] -and $item.Target) { $to = " to '$(@($item.Target)[0])'" }
      return @{ Reason = 'ReparsePoint'; Text = "'$c' is $kind$to; its permissions are not followed or changed" }
    }
    if (-not $item.PSIsContainer) { return @{ Reason = 'NotFound'; Text = "'$c' is a file, not a folder" } }
  }
  return $null
}

# Writes the DACL alone: DirectorySecurity persists only the sections it changed (Access here).
# DirectoryInfo.SetAccessControl in Windows PowerShell 5.1; an extension method
# (FileSystemAclExtensions) in PowerShell 7, which PowerShell does not bind as a method.
function Write-FolderAcl([string]$Path, $Acl) {
  $dir = New-Object System.IO.DirectoryInfo -ArgumentList $Path
  if ($dir.PSObject.Methods['SetAccessControl']) { $dir.SetAccessControl($Acl) }
  else { [System.IO.FileSystemAclExtensions]::SetAccessControl($dir, $Acl) }
}

function Read-FolderAcl([string]$Path) {
  # The DACL alone: no owner in the object, so writing it back cannot change the owner.
  return New-Object System.Security.AccessControl.DirectorySecurity -ArgumentList $Path, ([System.Security.AccessControl.AccessControlSections]::Access)
}

# What the account's explicit allow entries lack (scope -> missing mask) and whether they grant
# more than declared, and the deny entries that block a declared right: an explicit deny always
# (it comes first in a canonical DACL); an inherited one comes after every explicit allow entry,
# so it matters only where the declared rights are missing (InheritedDenied).
function Get-FolderAccessState($Acl, [string]$Sid, [long]$Want, [string]$WantScopes) {
  $have = @{ F = 0L; S = 0L; L = 0L }
  $mine = New-Object System.Collections.Generic.List[object]
  $wider = $false
  $denied = $null
  $inheritedDenied = $null
  foreach ($r in @($Acl.GetAccessRules($true, $true, [System.Security.Principal.SecurityIdentifier]))) {
    if ([string]$r.IdentityReference.Value -ne $Sid) { continue }
    $mask = Get-SpecificMask ([long][int]$r.FileSystemRights)
    $scopes = Get-AceScopes $r
    if ([string]$r.AccessControlType -eq 'Deny') {
      foreach ($sc in $WantScopes.ToCharArray()) {
        if ($scopes.Contains([string]$sc) -and ($mask -band $Want)) {
          if ($r.IsInherited) { $inheritedDenied = Format-Rights ($mask -band $Want) } else { $denied = Format-Rights ($mask -band $Want) }
        }
      }
      continue
    }
    if ($r.IsInherited) { continue }
    $mine.Add($r)
    foreach ($sc in $scopes.ToCharArray()) {
      $have[[string]$sc] = $have[[string]$sc] -bor $mask
      if (-not $WantScopes.Contains([string]$sc)) { $wider = $true }
    }
    if ($mask -band (-bnot $Want)) { $wider = $true }
  }
  $missing = [ordered]@{}
  foreach ($sc in $WantScopes.ToCharArray()) {
    $m = $Want -band (-bnot $have[[string]$sc])
    if ($m) { $missing[[string]$sc] = $m }
  }
  if ($missing.Count -eq 0) { $inheritedDenied = $null }
  return @{ Mine = $mine; Missing = $missing; Wider = $wider; Denied = $denied; InheritedDenied = $inheritedDenied }
}

# "Write, Delete (this folder, subfolders, files)", scopes lacking the same rights grouped.
function Format-Missing($Missing) {
  $groups = [ordered]@{}
  foreach ($sc in $Missing.Keys) {
    $k = Format-Rights $Missing[$sc]
    if (-not $groups.Contains($k)) { $groups[$k] = New-Object System.Collections.Generic.List[string] }
    $groups[$k].Add($ScopeNames[$sc])
  }
  return ((@(foreach ($k in $groups.Keys) { "$k ($($groups[$k] -join ', '))" })) -join '; ')
}

function Invoke-FileAccess($F, $B, $Ctx, $Items) {
  $path = $F.Path
  $flags = $AppliesToFlags[$F.AppliesTo]
  $desired = "$($F.Rights) ($($flags.Text))"
  $observed = $null
  try {
    $sid = Get-AccountSid $B $Ctx
    if (-not $sid) { throw "the account $($Ctx.Domain)\$($B.Account)`$ does not resolve to a SID on this host" }
    $want = Get-SpecificMask ([long][int][System.Security.AccessControl.FileSystemRights]$F.Rights)
    $pathState = @{ Exists = $false }
    $problem = Test-FolderPath $path $Ctx $pathState
    if ($problem) {
      $Items.Add((New-ResultItem -Item 'fileAccess' -Name $path -Observed $null -Desired $desired -Action 'failed' -Reason $problem.Reason -ErrorText $problem.Text))
      return
    }
    $created = $false
    if (-not $pathState.Exists) {
      if (-not $F.CreateIfMissing) {
        $Items.Add((New-ResultItem -Item 'fileAccess' -Name $path -Observed $null -Desired $desired -Action 'failed' -Reason 'NotFound' `
              -ErrorText "the folder '$path' does not exist on this host, and createIfMissing is false"))
        return
      }
      if ($B.Mode -eq 'observe') {
        $Items.Add((New-ResultItem -Item 'fileAccess' -Name $path -Observed $null -Desired $desired -Action 'would-change' -Reason 'NotFound' `
              -Missing "$($F.Rights) ($($flags.Text))" -ErrorText "the folder '$path' does not exist; apply creates it (createIfMissing)"))
        return
      }
      $null = New-Item -ItemType Directory -Path $path
      $created = $true
    }
    $acl = Read-FolderAcl $path
    $state = Get-FolderAccessState $acl $sid $want $flags.Scopes
    $observed = Format-AceList $state.Mine
    if ($created) { $observed = $null }
    if ($state.Denied) {
      $Items.Add((New-ResultItem -Item 'fileAccess' -Name $path -Observed $observed -Desired $desired -Action 'failed' -Reason 'DeniedByAcl' `
            -ErrorText "a deny entry for $($Ctx.Domain)\$($B.Account)`$ on '$path' denies $($state.Denied), and deny wins over allow; remove it there (it is never removed from here)"))
      return
    }
    if ($state.InheritedDenied) {
      $Items.Add((New-ResultItem -Item 'fileAccess' -Name $path -Observed $observed -Desired $desired -Action 'failed' -Reason 'DeniedByAcl' `
            -ErrorText "an inherited deny entry for $($Ctx.Domain)\$($B.Account)`$ on '$path' denies $($state.InheritedDenied); an explicit allow entry here would override it, so nothing is written: remove the deny on the parent folder, or grant the entry by hand if overriding it is meant"))
      return
    }
    $missingText = $null
    if ($state.Missing.Count -gt 0) { $missingText = Format-Missing $state.Missing }
    $narrow = $state.Wider -and $B.FileAccessPolicy -eq 'exact'
    if (-not $missingText -and -not $state.Wider) {
      $Items.Add((New-ResultItem -Item 'fileAccess' -Name $path -Observed $observed -Desired $desired -Action 'none'))
      return
    }
    $reason = 'MissingRights'
    if (-not $missingText) { $reason = 'WiderThanDeclared' }
    if ($created) { $reason = 'NotFound' }
    $note = $null
    if ($state.Wider -and -not $narrow) { $note = "the account's entries grant more than declared ($observed); kept, as fileSystemAccessPolicy is additive" }
    if ($B.Mode -eq 'observe' -or (-not $missingText -and -not $narrow)) {
      if ($state.Wider -and $narrow) { $note = "the account's entries grant more than declared ($observed); apply narrows them (fileSystemAccessPolicy exact)" }
      $Items.Add((New-ResultItem -Item 'fileAccess' -Name $path -Observed $observed -Desired $desired -Action 'would-change' -Reason $reason -Missing $missingText -ErrorText $note))
      return
    }
    $rule = New-Object System.Security.AccessControl.FileSystemAccessRule -ArgumentList (New-Object System.Security.Principal.SecurityIdentifier $sid), `
      ([System.Security.AccessControl.FileSystemRights]$F.Rights), ([System.Security.AccessControl.InheritanceFlags]$flags.Inheritance), `
      ([System.Security.AccessControl.PropagationFlags]$flags.Propagation), ([System.Security.AccessControl.AccessControlType]::Allow)
    # Add widens the account's entry with the same inheritance (or adds one); Set replaces the
    # account's explicit allow entries with exactly this one. Neither touches another identity.
    $modification = [System.Security.AccessControl.AccessControlModification]::Add
    if ($narrow) { $modification = [System.Security.AccessControl.AccessControlModification]::Set }
    $modified = $false
    $null = $acl.ModifyAccessRule($modification, $rule, [ref]$modified)
    Write-FolderAcl $path $acl
    # Read back: what the folder holds now decides, not what the call said.
    $after = Get-FolderAccessState (Read-FolderAcl $path) $sid $want $flags.Scopes
    if ($after.Missing.Count -gt 0) { throw "SetAccessControl returned, but the account still lacks $(Format-Missing $after.Missing) on '$path'" }
    if ($narrow -and $after.Wider) { throw "SetAccessControl returned, but the account's entries on '$path' still grant more than declared" }
    $Items.Add((New-ResultItem -Item 'fileAccess' -Name $path -Observed $observed -Desired $desired -Action 'changed' -Reason $reason -Missing $missingText -ErrorText $note))
  }
  catch {
    $Items.Add((New-ResultItem -Item 'fileAccess' -Name $path -Observed $observed -Desired $desired -Action 'failed' -Reason 'Error' -ErrorText (Format-ErrorText $_)))
  }
}

# Whether an identity switch may go ahead: only when this host can retrieve the password and the
# account holds the logon right Windows checks (a service restarted as a gMSA it cannot log on
# as stays stopped with 1069; an app pool answers 503; a task fails). Returns $null when it may,
# else the item to report instead (the object keeps its current identity).
function Get-SwitchBlocker([string]$Kind, [string]$Name, $Observed, $Desired, [string]$Right, $B, $Items) {
  if ($B.Retrievable -ne $true) {
    $why = 'this host cannot retrieve the password (see the retrievable item)'
    if ($B.AccountKind -eq 'smsa') { $why = 'the standalone account is not installed on this host (see the install item)' }
    if ($B.Retrievable -eq 'pending') { $why = 'this host is allowed but still waits for a fresh Kerberos ticket' }
    return (New-ResultItem -Item $Kind -Name $Name -Observed $Observed -Desired $Desired -Action 'pending' -Reason 'WaitingForRetrieval' `
        -ErrorText "not switched yet: $why; switching now would leave it unable to log on")
  }
  if ($Right) {
    foreach ($i in $Items) {
      if ($i['item'] -eq 'logonRight' -and $i['name'] -eq $Right -and $i['action'] -ne 'none' -and $i['action'] -ne 'changed') {
        return (New-ResultItem -Item $Kind -Name $Name -Observed $Observed -Desired $Desired -Action 'failed' -Reason 'NoLogonRight' `
            -ErrorText "not switched: the account does not hold $Right on this host (see that item), so it could not log on")
      }
      if ($i['item'] -eq 'logonRight' -and $i['name'] -eq $DenyRights[$Right] -and $i['action'] -eq 'failed') {
        return (New-ResultItem -Item $Kind -Name $Name -Observed $Observed -Desired $Desired -Action 'failed' -Reason 'NoLogonRight' `
            -ErrorText "not switched: $($DenyRights[$Right]) denies the account on this host (see that item), so it could not log on")
      }
    }
  }
  return $null
}

# ---------------------------------------------------------------------------------------------
# Windows services (Win32_Service)
# ---------------------------------------------------------------------------------------------

function Get-ServiceList($Ctx) {
  # One enumeration per run, matched with -eq: a name is never put into a WQL filter, where
  # quotes and backslashes would need escaping.
  if ($null -eq $Ctx.Services) { $Ctx.Services = @(Get-CimInstance -ClassName Win32_Service) }
  return , $Ctx.Services
}

# After a failed restart as the gMSA the service is stopped (Restart-Service stopped it, the start
# failed): put the old account back and start it again, when that account needs no password
# (LocalSystem, NT AUTHORITY\..., NT SERVICE\..., another managed account). Returns the text
# that ends the item's error.
function Undo-ServiceChange($Svc, [string]$Old) {
  $passwordless = $Old -eq 'LocalSystem' -or $Old -match '^NT (AUTHORITY|SERVICE)\\' -or ($Old -match '\$$' -and $Old -notmatch '^S-1-')
  if (-not $passwordless) { return "; the old account $Old needs a password, so it was not put back: the service stays stopped" }
  try {
    $r = Invoke-CimMethod -InputObject $Svc -MethodName Change -Arguments @{ StartName = $Old }
    if ([int]$r.ReturnValue -ne 0) { throw "Win32_Service.Change returned $([int]$r.ReturnValue)" }
    Restart-Service -Name ([System.Management.Automation.WildcardPattern]::Escape([string]$Svc.Name)) -Force
    return "; put back to $Old and started again"
  }
  catch { return "; putting back $Old failed too, the service stays stopped: " + (Format-ErrorText $_) }
}

function Invoke-Service($S, $Identity, $B, $Ctx, $Items) {
  $name = $S.Name
  try {
    $found = @(foreach ($x in (Get-ServiceList $Ctx)) { if ($x.Name -eq $name) { $x } })
    if ($found.Count -eq 0) {
      $Items.Add((New-ResultItem -Item 'service' -Name $name -Observed $null -Desired $Identity -Action 'failed' -Reason 'NotFound' -ErrorText "no service named '$name' on this host"))
      return
    }
    $svc = $found[0]
    $observed = [string]$svc.StartName
    if (Test-SameIdentity $observed $Ctx $B) {
      $Items.Add((New-ResultItem -Item 'service' -Name $name -Observed $observed -Desired $Identity -Action 'none'))
      return
    }
    if ($B.Mode -eq 'observe') {
      $Items.Add((New-ResultItem -Item 'service' -Name $name -Observed $observed -Desired $Identity -Action 'would-change' -Reason 'WrongIdentity'))
      return
    }
    $blocker = Get-SwitchBlocker 'service' $name $observed $Identity 'SeServiceLogonRight' $B $Items
    if ($blocker) { $Items.Add($blocker); return }
    # No StartPassword at all: CIM then passes NULL, which is what ChangeServiceConfig needs for
    # a managed service account (an empty string is "the password is empty" and is refused).
    $r = Invoke-CimMethod -InputObject $svc -MethodName Change -Arguments @{ StartName = $Identity }
    $code = [int]$r.ReturnValue
    if ($code -ne 0) {
      $why = $ServiceChangeCodes[$code]
      if (-not $why) { $why = 'see Win32_Service.Change return codes' }
      throw "Win32_Service.Change returned $code ($why)"
    }
    $restarted = $false
    if ($S.Restart -eq 'OnChange' -and [string]$svc.State -eq 'Running') {
      try {
        # -Name takes wildcards: escape so that a name like 'a*' restarts only 'a*'.
        Restart-Service -Name ([System.Management.Automation.WildcardPattern]::Escape($name)) -Force
        $restarted = $true
      }
      catch {
        $text = "the logon account was changed, but the restart failed: " + (Format-ErrorText $_)
        $text += Undo-ServiceChange $svc $observed
        $Items.Add((New-ResultItem -Item 'service' -Name $name -Observed $observed -Desired $Identity -Action 'failed' -Reason 'WrongIdentity' -Restarted $false `
              -ErrorText $text))
        return
      }
    }
    $Items.Add((New-ResultItem -Item 'service' -Name $name -Observed $observed -Desired $Identity -Action 'changed' -Reason 'WrongIdentity' -Restarted $restarted))
  }
  catch {
    $Items.Add((New-ResultItem -Item 'service' -Name $name -Observed $null -Desired $Identity -Action 'failed' -Reason 'Error' -ErrorText (Format-ErrorText $_)))
  }
}

# ---------------------------------------------------------------------------------------------
# Scheduled tasks
# ---------------------------------------------------------------------------------------------

function Get-TaskList($Ctx) {
  # Enumerated once and matched with -eq: Get-ScheduledTask's -TaskName and -TaskPath take wildcards.
  if ($null -eq $Ctx.Tasks) { $Ctx.Tasks = @(Get-ScheduledTask) }
  return , $Ctx.Tasks
}

function Format-TaskPrincipal([string]$UserId, [string]$LogonType, [string]$RunLevel) {
  return "$UserId (LogonType $LogonType, RunLevel $RunLevel)"
}

function Invoke-ScheduledTask($T, $Identity, $B, $Ctx, $Items) {
  $label = "$($T.Path)$($T.Name)"
  $desired = Format-TaskPrincipal $Identity 'Password' $T.RunLevel
  try {
    $found = @(foreach ($x in (Get-TaskList $Ctx)) { if ($x.TaskName -eq $T.Name -and $x.TaskPath -eq $T.Path) { $x } })
    if ($found.Count -eq 0) {
      $Items.Add((New-ResultItem -Item 'scheduledTask' -Name $label -Observed $null -Desired $desired -Action 'failed' -Reason 'NotFound' -ErrorText "no scheduled task '$($T.Name)' in folder '$($T.Path)'"))
      return
    }
    $task = $found[0]
    $p = $task.Principal
    $observed = Format-TaskPrincipal ([string]$p.UserId) ([string]$p.LogonType) ([string]$p.RunLevel)
    if ((Test-SameIdentity ([string]$p.UserId) $Ctx $B) -and [string]$p.LogonType -eq 'Password' -and [string]$p.RunLevel -eq $T.RunLevel) {
      $Items.Add((New-ResultItem -Item 'scheduledTask' -Name $label -Observed $observed -Desired $desired -Action 'none'))
      return
    }
    if ($B.Mode -eq 'observe') {
      $Items.Add((New-ResultItem -Item 'scheduledTask' -Name $label -Observed $observed -Desired $desired -Action 'would-change' -Reason 'WrongIdentity'))
      return
    }
    $blocker = Get-SwitchBlocker 'scheduledTask' $label $observed $desired 'SeBatchLogonRight' $B $Items
    if ($blocker) { $Items.Add($blocker); return }
    # LogonType Password with no password: Task Scheduler retrieves the gMSA's managed password.
    $principal = New-ScheduledTaskPrincipal -UserId $Identity -LogonType Password -RunLevel $T.RunLevel
    $null = Set-ScheduledTask -TaskName $task.TaskName -TaskPath $task.TaskPath -Principal $principal
    $Items.Add((New-ResultItem -Item 'scheduledTask' -Name $label -Observed $observed -Desired $desired -Action 'changed' -Reason 'WrongIdentity'))
  }
  catch {
    $Items.Add((New-ResultItem -Item 'scheduledTask' -Name $label -Observed $null -Desired $desired -Action 'failed' -Reason 'Error' -ErrorText (Format-ErrorText $_)))
  }
}

# ---------------------------------------------------------------------------------------------
# IIS application pools: Microsoft.Web.Administration.dll, loaded from %windir%\System32\inetsrv
# directly. Not the IISAdministration module: it is a Windows PowerShell module, and under
# PowerShell 7 it runs through the compatibility layer, which hands back a deserialized
# ServerManager that cannot commit. The assembly works the same in both editions.
# ---------------------------------------------------------------------------------------------

function Get-FreshServerManager {
  if (-not ('Microsoft.Web.Administration.ServerManager' -as [type])) {
    if (-not $env:windir) { throw 'IIS is not installed on this host (no %windir%)' }
    $dll = [System.IO.Path]::Combine($env:windir, 'System32', 'inetsrv', 'Microsoft.Web.Administration.dll')
    if (-not [System.IO.File]::Exists($dll)) { throw "IIS is not installed on this host ($dll is missing)" }
    $null = [System.Reflection.Assembly]::LoadFrom($dll)
  }
  # After CommitChanges a ServerManager's objects are read-only ("The configuration object is
  # read only, because it has been committed"): a fresh one for every pool.
  return New-Object Microsoft.Web.Administration.ServerManager
}

function Invoke-AppPool($P, $Identity, $B, $Ctx, $Items) {
  $name = $P.Name
  $desired = "SpecificUser $Identity"
  $sm = $null
  try {
    $sm = Get-FreshServerManager
    $pool = $sm.ApplicationPools[$name]
    if ($null -eq $pool) {
      $Items.Add((New-ResultItem -Item 'iisAppPool' -Name $name -Observed $null -Desired $desired -Action 'failed' -Reason 'NotFound' -ErrorText "no IIS application pool named '$name' on this host"))
      return
    }
    $type = [string]$pool.ProcessModel.IdentityType
    $user = [string]$pool.ProcessModel.UserName
    $observed = $type
    if ($type -eq 'SpecificUser') { $observed = "SpecificUser $user" }
    if ($type -eq 'SpecificUser' -and (Test-SameIdentity $user $Ctx $B)) {
      $Items.Add((New-ResultItem -Item 'iisAppPool' -Name $name -Observed $observed -Desired $desired -Action 'none'))
      return
    }
    if ($B.Mode -eq 'observe') {
      $Items.Add((New-ResultItem -Item 'iisAppPool' -Name $name -Observed $observed -Desired $desired -Action 'would-change' -Reason 'WrongIdentity'))
      return
    }
    $blocker = Get-SwitchBlocker 'iisAppPool' $name $observed $desired $null $B $Items
    if ($blocker) { $Items.Add($blocker); return }
    $pool.ProcessModel.IdentityType = 'SpecificUser'
    $pool.ProcessModel.UserName = $Identity
    $pool.ProcessModel.Password = ''
    $sm.CommitChanges()
    $restarted = $false
    if ($P.Restart -eq 'OnChange' -and [string]$pool.State -eq 'Started') {
      try { $null = $pool.Recycle(); $restarted = $true }
      catch {
        $Items.Add((New-ResultItem -Item 'iisAppPool' -Name $name -Observed $observed -Desired $desired -Action 'failed' -Reason 'WrongIdentity' -Restarted $false `
              -ErrorText ("the identity was changed, but recycling failed, so the pool's worker processes keep the old identity until they recycle: " + (Format-ErrorText $_))))
        return
      }
    }
    $Items.Add((New-ResultItem -Item 'iisAppPool' -Name $name -Observed $observed -Desired $desired -Action 'changed' -Reason 'WrongIdentity' -Restarted $restarted))
  }
  catch {
    $Items.Add((New-ResultItem -Item 'iisAppPool' -Name $name -Observed $null -Desired $desired -Action 'failed' -Reason 'Error' -ErrorText (Format-ErrorText $_)))
  }
  finally { if ($null -ne $sm) { $sm.Dispose() } }
}

# ---------------------------------------------------------------------------------------------
# One binding, one request
# ---------------------------------------------------------------------------------------------

function Invoke-Binding($B, $Ctx) {
  $items = New-Object System.Collections.Generic.List[object]
  $identity = "$($Ctx.Domain)\$($B.Account)`$"
  $install = 'NotNeeded'
  if ($B.AccountKind -eq 'smsa') {
    $retrievable = [bool](Invoke-Install $B $Ctx $items)
    $install = 'NotInstalled'
    if ($retrievable) { $install = 'Installed' }
    # A standalone account that cannot be installed here belongs to another computer: put
    # nothing of it on this host (groups, rights, folders), only report what differs.
    elseif ($B.Mode -eq 'apply') { $B.Mode = 'observe' }
  }
  else { $retrievable = Invoke-Retrievable $B $Ctx $items }
  $B.Retrievable = $retrievable
  # Windows needs "Log on as a service" for a service and "Log on as a batch job" for a task:
  # granted even when the manifest leaves them out.
  $rights = New-Object System.Collections.Generic.List[string]
  foreach ($r in $B.LogonRights) { $rights.Add($r) }
  if ($B.Services.Count -gt 0 -and -not $rights.Contains('SeServiceLogonRight')) { $rights.Add('SeServiceLogonRight') }
  if ($B.ScheduledTasks.Count -gt 0 -and -not $rights.Contains('SeBatchLogonRight')) { $rights.Add('SeBatchLogonRight') }
  # Items are independent: each has its own try/catch, so one failure never stops the others.
  # Rights come before the identity switches, which check them.
  foreach ($g in $B.LocalGroups) { Invoke-LocalGroup $g $B $Ctx $items }
  foreach ($r in $rights) { Invoke-LogonRight $r $identity $B $Ctx $items }
  foreach ($f in $B.FileSystemAccess) { Invoke-FileAccess $f $B $Ctx $items }
  foreach ($s in $B.Services) { Invoke-Service $s $identity $B $Ctx $items }
  foreach ($t in $B.ScheduledTasks) { Invoke-ScheduledTask $t $identity $B $Ctx $items }
  foreach ($p in $B.IisAppPools) { Invoke-AppPool $p $identity $B $Ctx $items }
  return [ordered]@{
    name        = $B.Name
    account     = $B.Account
    retrievable = $retrievable
    install     = $install
    items       = $items
  }
}

function Invoke-Request([string]$Json, $Ctx) {
  try {
    $req = Read-Request $Json
    # A request that reached the wrong machine (stale DNS, a swapped address) must not act here.
    if ($env:COMPUTERNAME -and $env:COMPUTERNAME -ne $req.Host) {
      throw (New-RequestError 'BadRequest' "the request is for host '$($req.Host)' but this is '$($env:COMPUTERNAME)'")
    }
  }
  catch {
    $code = 'BadRequest'
    if ($_.Exception.Data.Contains('gmsaCode')) { $code = $_.Exception.Data['gmsaCode'] }
    return [ordered]@{ version = $ContractVersion; error = [ordered]@{ code = $code; message = (Format-ErrorText $_) } }
  }
  $Ctx.Domain = $req.Domain
  $Ctx.Host = $req.Host
  $bindings = New-Object System.Collections.Generic.List[object]
  foreach ($b in $req.Bindings) { $bindings.Add((Invoke-Binding $b $Ctx)) }
  return [ordered]@{
    version    = $ContractVersion
    host       = $req.Host
    mode       = $req.Mode
    powershell = $PSVersionTable.PSVersion.ToString()
    bindings   = $bindings
  }
}

# Non-ASCII characters become \uXXXX escapes, so the result survives any console code page
# (Windows PowerShell writes stdout in the OEM code page).
function ConvertTo-AsciiJson($Object) {
  $json = ConvertTo-Json -InputObject $Object -Depth 12 -Compress
  $sb = New-Object System.Text.StringBuilder
  foreach ($ch in $json.ToCharArray()) {
    if ([int]$ch -lt 128) { $null = $sb.Append($ch) } else { $null = $sb.Append(('\u{0:x4}' -f [int]$ch)) }
  }
  return $sb.ToString()
}

$ctx = @{
  Domain = $null; Services = $null; Tasks = $null; Disks = $null; Sids = @{}; Output = $null
  Native = $null; NativeError = $null; PolicyRights = $null; PolicyRightsError = $null
}
try {
  if (-not $PSBoundParameters.ContainsKey('RequestJson')) { $RequestJson = [Console]::In.ReadToEnd() }
  # Every stream of the work is discarded, so nothing a cmdlet prints can reach stdout; the
  # result comes back through $ctx.
  & { $ctx.Output = Invoke-Request $RequestJson $ctx } *> $null
}
catch {
  $ctx.Output = [ordered]@{ version = $ContractVersion; error = [ordered]@{ code = 'Internal'; message = (Format-ErrorText $_) } }
}
[Console]::Out.Write((ConvertTo-AsciiJson $ctx.Output))
[Console]::Out.Write("`n")
[Console]::Out.Flush()
