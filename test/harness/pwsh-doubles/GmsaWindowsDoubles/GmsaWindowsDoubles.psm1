<#
  Test doubles for the Windows-only commands gmsa-host.ps1 calls, for PowerShell 7 on Linux: a
  module that PowerShell autoloads from PSModulePath the first time the script calls one of its
  commands, so the script runs exactly as on Windows (`pwsh -NoProfile -NonInteractive
  -EncodedCommand <bootstrap>`, script and request on stdin), with no launcher in between.

  The test host is the JSON file $env:GMSA_DOUBLE_STATE (see state.ts for its shape): its
  principals, local groups, user rights, group policy, services, scheduled tasks, IIS app pools
  and Kerberos ticket cache. Every change goes to that file at once, so the next run (or the
  test, reading the file) sees it; every call that asks or changes something is appended to
  `events`. The P/Invoke side of the host (netapi32/advapi32) is netapi32.c + netapi-helper.ts,
  which write the same file.

  Each double is as strict as Windows where Windows is strict (see controller/hosts/README.md):
  Get-LocalGroupMember throws on an orphaned SID, Win32_Service.Change refuses an empty
  password for a managed account, a service set to a gMSA fails to start with 1069 unless the
  host can retrieve the password and the account holds SeServiceLogonRight, secedit exports
  SIDs and returns its warning exit code, a GPO puts its list back at the next policy refresh
  (the next run), native commands write to stderr (as an error record, which is what Windows
  PowerShell 5.1 makes of a native command's stderr line).
#>

Set-StrictMode -Version Latest

$script:State = $null
$script:StateStamp = $null

# The state is kept between calls of one run, and read again when the file changed (a test, or
# the netapi32 double, which runs in another process, wrote it). The first read of a run is a
# policy refresh: a GPO's user-right lists are put back, as gpupdate would.
function Read-DoubleState {
  $path = $env:GMSA_DOUBLE_STATE
  $stamp = [System.IO.File]::GetLastWriteTimeUtc($path).Ticks
  if ($null -eq $script:State -or $stamp -ne $script:StateStamp) {
    $first = $null -eq $script:State
    $script:State = [System.IO.File]::ReadAllText($path) | ConvertFrom-Json -AsHashtable
    $script:StateStamp = $stamp
    if ($first) { Invoke-PolicyRefresh $script:State }
  }
  return $script:State
}

function Write-DoubleState($State) {
  # Write then rename: a reader never sees half a file.
  $path = $env:GMSA_DOUBLE_STATE
  $script:State = $State
  $tmp = "$path.$PID.tmp"
  [System.IO.File]::WriteAllText($tmp, (ConvertTo-Json -InputObject $State -Depth 20))
  [System.IO.File]::Move($tmp, $path, $true)
  $script:StateStamp = [System.IO.File]::GetLastWriteTimeUtc($path).Ticks
}

function Invoke-PolicyRefresh($State) {
  if (-not $State.ContainsKey('gpo') -or $null -eq $State['gpo']) { return }
  $changed = $false
  foreach ($right in @($State['gpo'].Keys)) {
    $want = @($State['gpo'][$right]['accounts'])
    $have = @()
    if ($State['rights'].ContainsKey($right)) { $have = @($State['rights'][$right]) }
    if (($want -join ',') -ne ($have -join ',')) { $State['rights'][$right] = $want; $changed = $true }
  }
  if ($changed) {
    Add-DoubleEvent $State 'gpupdate' 'user rights put back by group policy'
    Write-DoubleState $State
  }
}

function Add-DoubleEvent($State, [string]$Command, [string]$Detail) {
  if (-not $State.ContainsKey('events') -or $null -eq $State['events']) { $State['events'] = @() }
  $State['events'] = @($State['events']) + @(@{ command = $Command; detail = $Detail })
}

# A command listed in the state's failOn throws, to show one failing item does not stop others.
function Assert-DoubleWorks($State, [string]$Command) {
  if ($State.ContainsKey('failOn') -and @($State['failOn']) -contains $Command) {
    throw "$Command failed (injected by the test double)"
  }
}

function Find-Key($Map, [string]$Name) {
  foreach ($k in @($Map.Keys)) { if ($k -eq $Name) { return $k } }
  return $null
}

# The principal (from the state's `principals`) a name or SID stands for, or $null.
function Find-Principal($State, [string]$Text) {
  if ([string]::IsNullOrEmpty($Text)) { return $null }
  foreach ($p in @($State['principals'])) {
    if ($p['sid'] -eq $Text) { return $p }
    foreach ($n in @($p['names'])) { if ($n -eq $Text) { return $p } }
  }
  return $null
}

# Find-Principal, then the DC (through the same lookup LookupAccountName uses in the doubles),
# for the domain's own accounts when the host has `ad`.
function Resolve-DoublePrincipal($State, [string]$Text) {
  $p = Find-Principal $State $Text
  if ($null -ne $p -or [string]::IsNullOrEmpty($Text) -or $Text -match '^S-1-') { return $p }
  if (-not $State.ContainsKey('ad') -or $null -eq $State['ad']) { return $null }
  $out = @(& $env:GMSA_DOUBLE_NODE --no-warnings $env:GMSA_DOUBLE_NETAPI_HELPER 'lookup-name' $Text '')
  if ($out.Count -lt 5 -or $out[0] -ne '0') { return $null }
  # `gmsa`: a managed account (group or standalone), which takes no password; `smsa`: standalone.
  return @{ sid = $out[1]; names = @($Text); gmsa = ($out[4] -eq 'gmsa' -or $out[4] -eq 'smsa'); smsa = ($out[4] -eq 'smsa') }
}

# How Windows shows a gMSA principal varies (acct$, DOMAIN\acct$, UPN, SID): with
# randomPrincipalForms, one of them at random.
function Show-Principal($State, [string]$Stored) {
  $p = Find-Principal $State $Stored
  if ($null -eq $p -or -not $p.ContainsKey('gmsa') -or -not $p['gmsa'] -or -not $State.ContainsKey('randomPrincipalForms') -or -not $State['randomPrincipalForms']) { return $Stored }
  $forms = @(@($p['names']) + @($p['sid']))
  return $forms[(Get-Random -Maximum $forms.Count)]
}

# Asks the netapi32 double's helper (the same answer NetQueryServiceAccount gives, without an event).
# A standalone MSA logs on only once installed on this host (MsaInfoInstalled).
function Test-DoubleRetrievable([string]$Account, [bool]$Standalone = $false) {
  $out = @(& $env:GMSA_DOUBLE_NODE --no-warnings $env:GMSA_DOUBLE_NETAPI_HELPER 'query-quiet' $Account '')
  if ($Standalone) { return ($out.Count -ge 2 -and $out[0] -eq '0' -and $out[1] -eq '5') }
  return ($out.Count -ge 2 -and $out[0] -eq '0' -and ($out[1] -eq '4' -or $out[1] -eq '5'))
}

# The ActiveDirectory module's answer (the script's fallback when P/Invoke is not allowed):
# the same question as NetQueryServiceAccount, through the same helper and ticket cache.
function Test-ADServiceAccount {
  [CmdletBinding()]
  param([Parameter(Mandatory)][string]$Identity)
  $s = Read-DoubleState
  Assert-DoubleWorks $s 'Test-ADServiceAccount'
  $account = $Identity.TrimEnd('$')
  $out = @(& $env:GMSA_DOUBLE_NODE --no-warnings $env:GMSA_DOUBLE_NETAPI_HELPER 'query' $account 'Test-ADServiceAccount')
  if ($out.Count -lt 2 -or $out[0] -ne '0') { throw "Test-ADServiceAccount: Unable to contact the server (error $($out[0]))." }
  if ($out[1] -eq '1') { throw "Cannot find an object with identity: '$account'." }
  $result = ($out[1] -eq '4' -or $out[1] -eq '5')
  if (-not $result) { Write-Warning "Test failed for Managed Service Account $account." }
  return $result
}

function Install-ADServiceAccount {
  [CmdletBinding()]
  param([Parameter(Mandatory)][string]$Identity)
  $s = Read-DoubleState
  Add-DoubleEvent $s 'Install-ADServiceAccount' $Identity
  Write-DoubleState $s
}

# A native command's stderr line, as Windows PowerShell 5.1 treats it: an error record that is
# terminating when the caller's $ErrorActionPreference is Stop (so the exit code is lost), and
# otherwise lands in the error stream (2>&1 merges it). The caller's preference is read through
# $PSCmdlet, since a module function does not see the caller's variables.
function Write-NativeStderr($Cmdlet, [string]$Text) {
  $record = New-Object System.Management.Automation.ErrorRecord ([System.Exception]::new($Text)), 'NativeCommandError', 'NotSpecified', $null
  if ($Cmdlet.SessionState.PSVariable.GetValue('ErrorActionPreference') -eq 'Stop') { $Cmdlet.ThrowTerminatingError($record) }
  $ErrorActionPreference = 'Continue'
  $Cmdlet.WriteError($record)
}

# Native: writes its banner to stdout and, like the real klist on some builds, a line to stderr.
function klist {
  [CmdletBinding(PositionalBinding = $false)]
  param([string]$li, [Parameter(ValueFromRemainingArguments = $true)][string[]]$Rest)
  $s = Read-DoubleState
  # Called as `klist -li 0x3e7 purge` -li binds here; splatted from an array it arrives in $Rest.
  $words = @($Rest)
  if ($PSBoundParameters.ContainsKey('li')) { $words = @('-li', $li) + $words }
  $line = $words -join ' '
  if ($line -ne '-li 0x3e7 purge') { $global:LASTEXITCODE = 87; return "klist double: unsupported arguments: $line" }
  $s['kerberos']['tickets'] = @{}
  Add-DoubleEvent $s 'klist' $line
  Write-DoubleState $s
  $global:LASTEXITCODE = 0
  Write-NativeStderr $PSCmdlet 'klist: the ticket cache of LogonId 0:0x3e7 was purged (stderr)'
  'Current LogonId is 0:0x3e7'
  'Ticket(s) purged!'
}

# Like the real cmdlet: throws when the group holds a SID that no longer resolves (an orphan,
# common in Administrators), with the message Windows gives.
function Get-LocalGroupMember {
  [CmdletBinding()]
  param([Parameter(Mandatory)][string]$Name)
  $s = Read-DoubleState
  Assert-DoubleWorks $s 'Get-LocalGroupMember'
  $key = Find-Key $s['localGroups'] $Name
  if ($null -eq $key) { throw "Group $Name was not found." }
  $out = @()
  foreach ($m in @($s['localGroups'][$key])) {
    $p = Find-Principal $s $m
    if ($null -eq $p) { throw 'Failed to compare two elements in the array.' }
    $out += [pscustomobject]@{ Name = @($p['names'])[0]; SID = $p['sid']; ObjectClass = 'User'; PrincipalSource = 'ActiveDirectory' }
  }
  return $out
}

function Add-LocalGroupMember {
  [CmdletBinding()]
  param([Parameter(Mandatory)][string]$Name, [Parameter(Mandatory)][string[]]$Member)
  $s = Read-DoubleState
  Assert-DoubleWorks $s 'Add-LocalGroupMember'
  $key = Find-Key $s['localGroups'] $Name
  if ($null -eq $key) { throw "Group $Name was not found." }
  foreach ($m in $Member) {
    $p = Find-Principal $s $m
    if ($null -eq $p) { throw "Principal $m was not found." }
    if (@($s['localGroups'][$key]) -contains $p['sid']) { throw "$m is already a member of group $key." }
    $s['localGroups'][$key] = @($s['localGroups'][$key]) + @($p['sid'])
  }
  Add-DoubleEvent $s 'Add-LocalGroupMember' "$key <- $($Member -join ',')"
  Write-DoubleState $s
}

# secedit /export /cfg FILE /areas USER_RIGHTS [/quiet]    writes the rights as Windows does (UTF-16 INF, SIDs as *S-1-...)
# secedit /configure /db DB /cfg FILE /areas USER_RIGHTS   sets each right listed in FILE to exactly its list
# /configure ends with exit code 3 ("warnings occurred", with the line on stderr) when an entry
# does not resolve to a SID, or when the state says so (seceditWarnings), as the real one does.
function secedit {
  [CmdletBinding()]
  param([Parameter(ValueFromRemainingArguments = $true)][string[]]$Rest)
  $argv = @($Rest)
  $s = Read-DoubleState
  $opts = @{}
  $verb = $null
  for ($i = 0; $i -lt $argv.Count; $i++) {
    $a = [string]$argv[$i]
    switch ($a) {
      '/export' { $verb = 'export' }
      '/configure' { $verb = 'configure' }
      '/quiet' { }
      default {
        if ($a.StartsWith('/') -and $i + 1 -lt $argv.Count) { $opts[$a] = [string]$argv[$i + 1]; $i++ }
        else { $global:LASTEXITCODE = 87; return "secedit double: unexpected argument $a" }
      }
    }
  }
  if ($opts['/areas'] -ne 'USER_RIGHTS' -or -not $opts['/cfg']) { $global:LASTEXITCODE = 87; return 'secedit double: only /areas USER_RIGHTS with /cfg' }
  $code = 0
  if ($verb -eq 'export') {
    Assert-DoubleWorks $s 'secedit /export'
    $lines = @('[Unicode]', 'Unicode=yes', '[System Access]', 'MinimumPasswordAge = 1', '[Privilege Rights]')
    foreach ($r in @($s['rights'].Keys | Sort-Object)) {
      $holders = @(foreach ($h in @($s['rights'][$r])) {
          $p = Find-Principal $s ([string]$h).TrimStart('*')
          if ($null -ne $p) { "*$($p['sid'])" } else { $h }
        })
      if ($holders.Count -gt 0) { $lines += "$r = $($holders -join ',')" }
    }
    $lines += @('[Version]', 'signature="$CHICAGO$"', 'Revision=1')
    [System.IO.File]::WriteAllText($opts['/cfg'], (($lines -join "`r`n") + "`r`n"), [System.Text.Encoding]::Unicode)
  }
  elseif ($verb -eq 'configure') {
    Assert-DoubleWorks $s 'secedit /configure'
    if (-not $opts['/db']) { $global:LASTEXITCODE = 87; return 'secedit double: /configure needs /db' }
    $in = $false
    foreach ($line in [System.IO.File]::ReadAllLines($opts['/cfg'], [System.Text.Encoding]::Unicode)) {
      $t = $line.Trim()
      if ($t.StartsWith('[')) { $in = ($t -eq '[Privilege Rights]'); continue }
      if (-not $in -or $t.IndexOf('=') -lt 1) { continue }
      $name = $t.Substring(0, $t.IndexOf('=')).Trim()
      $entries = @($t.Substring($t.IndexOf('=') + 1).Split(',') | ForEach-Object { $_.Trim() } | Where-Object { $_ })
      foreach ($e in $entries) { if ($e -notmatch '^\*S-1-' -and $null -eq (Resolve-DoublePrincipal $s $e)) { $code = 3 } }
      $s['rights'][$name] = $entries
      Add-DoubleEvent $s 'secedit /configure' "$name = $($entries -join ',')"
    }
    if ($s.ContainsKey('seceditWarnings') -and $s['seceditWarnings']) { $code = 3 }
    Write-DoubleState $s
  }
  else { $global:LASTEXITCODE = 87; return 'secedit double: /export or /configure' }
  $global:LASTEXITCODE = $code
  if ($code -eq 3) {
    Write-NativeStderr $PSCmdlet 'Task is completed. Warnings occurred for some attributes during this operation. It''s ok to ignore the warning.'
  }
  return 'The task has completed successfully.'
}

# Win32_Service, and the RSoP classes of root\rsop\computer (RSOP_UserPrivilegeRight, RSOP_GPO).
function Get-CimInstance {
  [CmdletBinding()]
  param([Parameter(Mandatory)][string]$ClassName, [string]$Namespace = 'root\cimv2')
  $s = Read-DoubleState
  Assert-DoubleWorks $s 'Get-CimInstance'
  if ($Namespace -eq 'root\rsop\computer') {
    Assert-DoubleWorks $s 'RSoP'
    $gpo = @{}
    if ($s.ContainsKey('gpo') -and $null -ne $s['gpo']) { $gpo = $s['gpo'] }
    if ($ClassName -eq 'RSOP_GPO') {
      foreach ($r in @($gpo.Keys)) {
        [pscustomobject]@{ id = "cn={$($gpo[$r]['id'])},cn=policies,cn=system,DC=company,DC=local"; name = $gpo[$r]['name'] }
      }
      return
    }
    if ($ClassName -ne 'RSOP_UserPrivilegeRight') { throw "Invalid class $ClassName" }
    foreach ($r in @($gpo.Keys)) {
      [pscustomobject]@{
        UserRight   = $r
        AccountList = [string[]]@($gpo[$r]['accounts'])
        precedence  = [uint32]1
        GPOID       = "cn={$($gpo[$r]['id'])},cn=policies,cn=system,DC=company,DC=local"
      }
    }
    return
  }
  if ($Namespace -eq 'root\cimv2' -and $ClassName -eq 'Win32_LogicalDisk') {
    # Win32_LogicalDisk: DeviceID 'D:', FileSystem 'NTFS' (null for a drive without media), DriveType 3 local, 2 removable, 4 network.
    $volumes = @{}
    if ($s.ContainsKey('volumes') -and $null -ne $s['volumes']) { $volumes = $s['volumes'] }
    foreach ($d in @($volumes.Keys | Sort-Object)) {
      [pscustomobject]@{ DeviceID = $d; FileSystem = $volumes[$d]['fileSystem']; DriveType = [uint32]$volumes[$d]['driveType'] }
    }
    return
  }
  if ($Namespace -ne 'root\cimv2' -or $ClassName -ne 'Win32_Service') { throw "Get-CimInstance double: only Win32_Service, Win32_LogicalDisk and RSoP, not $Namespace $ClassName" }
  foreach ($svc in @($s['services'])) {
    $o = [pscustomobject]@{ Name = $svc['Name']; StartName = (Show-Principal $s $svc['StartName']); State = $svc['State'] }
    $o.PSObject.TypeNames.Insert(0, 'Microsoft.Management.Infrastructure.CimInstance#root/cimv2/Win32_Service')
    $o
  }
}

# Win32_Service.Change: a StartPassword that is present (even '') is a password; for a managed
# service account Windows wants none (NULL) and refuses one with 22 (invalid service account).
function Invoke-CimMethod {
  [CmdletBinding()]
  param([Parameter(Mandatory)]$InputObject, [Parameter(Mandatory)][string]$MethodName, [hashtable]$Arguments)
  $s = Read-DoubleState
  Assert-DoubleWorks $s 'Invoke-CimMethod'
  if ($MethodName -ne 'Change') { throw "Invoke-CimMethod double: only Change, not $MethodName" }
  $svc = @($s['services']) | Where-Object { $_['Name'] -eq $InputObject.Name } | Select-Object -First 1
  if ($null -eq $svc) { throw 'Not found' }
  if ($svc.ContainsKey('changeReturnValue')) { return [pscustomobject]@{ ReturnValue = [uint32]$svc['changeReturnValue'] } }
  $p = Resolve-DoublePrincipal $s ([string]$Arguments['StartName'])
  if ($null -eq $p) { return [pscustomobject]@{ ReturnValue = [uint32]22 } }
  if ($Arguments.ContainsKey('StartPassword') -and $p.ContainsKey('gmsa') -and $p['gmsa']) {
    Add-DoubleEvent $s 'Win32_Service.Change' "$($svc['Name']) refused: a password for managed account $($Arguments['StartName'])"
    Write-DoubleState $s
    return [pscustomobject]@{ ReturnValue = [uint32]22 }
  }
  $svc['StartName'] = $Arguments['StartName']
  if ($Arguments.ContainsKey('StartPassword')) { $svc['LastStartPassword'] = $Arguments['StartPassword'] }
  Add-DoubleEvent $s 'Win32_Service.Change' "$($svc['Name']) StartName=$($Arguments['StartName'])"
  Write-DoubleState $s
  return [pscustomobject]@{ ReturnValue = [uint32]0 }
}

# A service that logs on as a gMSA starts only when the host can retrieve the password and the
# account holds SeServiceLogonRight; otherwise it stays stopped with 1069, as on Windows.
function Restart-Service {
  [CmdletBinding()]
  param([Parameter(Mandatory)][string[]]$Name, [switch]$Force)
  $s = Read-DoubleState
  Assert-DoubleWorks $s 'Restart-Service'
  $hit = $false
  $failed = $null
  foreach ($svc in @($s['services'])) {
    foreach ($pattern in $Name) {
      # The real cmdlet treats -Name as a wildcard pattern.
      if ($svc['Name'] -like $pattern) {
        $hit = $true
        $svc['Restarts'] = 1 + [int]$(if ($svc.ContainsKey('Restarts')) { $svc['Restarts'] } else { 0 })
        Add-DoubleEvent $s 'Restart-Service' $svc['Name']
        $p = Resolve-DoublePrincipal $s ([string]$svc['StartName'])
        if ($null -ne $p -and $p.ContainsKey('gmsa') -and $p['gmsa']) {
          $account = ([string]@($p['names'])[0] -replace '^.*\\', '' -replace '@.*$', '').TrimEnd('$')
          $holders = @()
          if ($s['rights'].ContainsKey('SeServiceLogonRight')) {
            $holders = @(foreach ($h in @($s['rights']['SeServiceLogonRight'])) {
                if ([string]$h -match '^\*(S-1-.*)$') { $Matches[1] } else { $q = Resolve-DoublePrincipal $s ([string]$h); if ($q) { $q['sid'] } }
              })
          }
          $standalone = $p.ContainsKey('smsa') -and $p['smsa']
          if (-not (Test-DoubleRetrievable $account $standalone) -or $holders -notcontains $p['sid']) {
            $svc['State'] = 'Stopped'
            $failed = "Failed to start service '$($svc['Name']) ($($svc['Name']))'. The service did not start due to a logon failure. (1069)"
            continue
          }
        }
        # A service whose process cannot run as this account (it may not read its own files,
        # say): Restart-Service stops it, the start fails, and it stays stopped.
        if ($svc.ContainsKey('failsToStartAs') -and $null -ne $p -and $p['sid'] -eq $svc['failsToStartAs']) {
          $svc['State'] = 'Stopped'
          $failed = "Failed to start service '$($svc['Name']) ($($svc['Name']))'."
          continue
        }
        $svc['State'] = 'Running'
      }
    }
  }
  if (-not $hit) { throw "Cannot find any service with service name '$($Name -join ',')'." }
  Write-DoubleState $s
  if ($failed) { throw $failed }
}

function Get-ScheduledTask {
  [CmdletBinding()]
  param()
  $s = Read-DoubleState
  Assert-DoubleWorks $s 'Get-ScheduledTask'
  foreach ($t in @($s['tasks'])) {
    [pscustomobject]@{
      TaskName  = $t['TaskName']
      TaskPath  = $t['TaskPath']
      Principal = [pscustomobject]@{ UserId = (Show-Principal $s $t['UserId']); LogonType = $t['LogonType']; RunLevel = $t['RunLevel'] }
    }
  }
}

function New-ScheduledTaskPrincipal {
  [CmdletBinding()]
  param(
    [Parameter(Mandatory)][string]$UserId,
    [ValidateSet('None', 'Password', 'S4U', 'Interactive', 'Group', 'ServiceAccount', 'InteractiveOrPassword')][string]$LogonType,
    [ValidateSet('Limited', 'Highest')][string]$RunLevel
  )
  return [pscustomobject]@{ UserId = $UserId; LogonType = $LogonType; RunLevel = $RunLevel }
}

function Set-ScheduledTask {
  [CmdletBinding()]
  param([Parameter(Mandatory)][string]$TaskName, [string]$TaskPath = '\', $Principal)
  $s = Read-DoubleState
  Assert-DoubleWorks $s 'Set-ScheduledTask'
  $t = @($s['tasks']) | Where-Object { $_['TaskName'] -eq $TaskName -and $_['TaskPath'] -eq $TaskPath } | Select-Object -First 1
  if ($null -eq $t) { throw "The system cannot find the file specified. (task '$TaskPath$TaskName')" }
  $t['UserId'] = $Principal.UserId
  $t['LogonType'] = $Principal.LogonType
  $t['RunLevel'] = $Principal.RunLevel
  Add-DoubleEvent $s 'Set-ScheduledTask' "$TaskPath$TaskName UserId=$($Principal.UserId)"
  Write-DoubleState $s
  return [pscustomobject]@{ TaskName = $TaskName; TaskPath = $TaskPath }
}

# ---------------------------------------------------------------------------------------------
# The file system and folder ACLs. The real .NET access-control classes throw
# PlatformNotSupportedException on Linux, and the paths are Windows paths: so once this module is
# loaded (PowerShell autoloads it at the script's first Windows-only command, the
# Win32_LogicalDisk enumeration that precedes every file-system step), its Get-Item, New-Item,
# New-Object and Set-Acl functions take precedence over the cmdlets of the same names, and stand
# for the state's `volumes` and `files`. New-Object hands out the AccessControl.cs doubles for
# SecurityIdentifier, NTAccount, FileSystemAccessRule, DirectorySecurity and DirectoryInfo
# (SetAccessControl), and passes every
# other type to the real cmdlet. Strict where Windows is, and stricter where following a link
# would be the script's bug: these doubles refuse to read or write through a reparse point.
# ---------------------------------------------------------------------------------------------

function Import-AclDouble {
  if (-not ('GmsaDoubles.DirectorySecurity' -as [type])) { Add-Type -Path $env:GMSA_DOUBLE_ACL }
}

# The key of a path in the state's `files` (NTFS compares names without regard to case), or $null.
function Find-FsKey($State, [string]$Path) {
  if (-not $State.ContainsKey('files') -or $null -eq $State['files']) { return $null }
  $want = $Path
  if ($want.Length -gt 3) { $want = $want.TrimEnd('\') }
  foreach ($k in @($State['files'].Keys)) { if ($k -eq $want) { return $k } }
  return $null
}

function Get-ParentPath([string]$Path) {
  $i = $Path.LastIndexOf('\')
  if ($i -lt 0 -or $Path.Length -le 3) { return $null }
  if ($i -eq 2) { return $Path.Substring(0, 3) }
  return $Path.Substring(0, $i)
}

function New-NotFoundRecord([string]$Path) {
  $e = New-Object System.Management.Automation.ItemNotFoundException "Cannot find path '$Path' because it does not exist."
  return New-Object System.Management.Automation.ErrorRecord $e, 'PathNotFound,Microsoft.PowerShell.Commands.GetItemCommand', 'ObjectNotFound', $Path
}

# An ancestor that is a junction or symbolic link: the real command would go through it.
function Assert-NoReparseAbove($State, [string]$Path, [string]$Command) {
  $p = Get-ParentPath $Path
  while ($p) {
    $k = Find-FsKey $State $p
    if ($k -and $State['files'][$k].ContainsKey('reparse') -and $null -ne $State['files'][$k]['reparse']) {
      throw "$Command double: '$Path' lies below the reparse point '$k'; the host script must not follow it"
    }
    $p = Get-ParentPath $p
  }
}

# Get-Item -LiteralPath: the item itself, not what a link points to (FileAttributes.ReparsePoint,
# LinkType and Target as PowerShell shows a junction or symbolic link).
function Get-Item {
  [CmdletBinding()]
  param([string]$LiteralPath, [string]$Path, [switch]$Force)
  if ($PSBoundParameters.ContainsKey('Path')) { throw 'Get-Item double: -Path takes wildcards; names from Git go to -LiteralPath' }
  $s = Read-DoubleState
  Assert-DoubleWorks $s 'Get-Item'
  Assert-NoReparseAbove $s $LiteralPath 'Get-Item'
  $key = Find-FsKey $s $LiteralPath
  if ($null -eq $key) { $PSCmdlet.WriteError((New-NotFoundRecord $LiteralPath)); return }
  $i = $s['files'][$key]
  $attributes = [System.IO.FileAttributes]::Archive
  if ($i['type'] -eq 'Directory') { $attributes = [System.IO.FileAttributes]::Directory }
  $linkType = $null
  $target = $null
  if ($i.ContainsKey('reparse') -and $null -ne $i['reparse']) {
    $attributes = $attributes -bor [System.IO.FileAttributes]::ReparsePoint
    $linkType = $i['reparse']['type']
    $target = $i['reparse']['target']
  }
  [pscustomobject]@{
    FullName = $key; Attributes = $attributes; PSIsContainer = ($i['type'] -eq 'Directory'); LinkType = $linkType; Target = $target
  }
}

# New-Item -ItemType Directory -Path: creates the folder and its missing parents, each inheriting
# from its parent as Windows computes it (inheritable entries, InheritOnly cleared,
# NoPropagateInherit ending the inheritance), owned by Administrators (the default owner of
# objects an administrator creates).
function New-Item {
  [CmdletBinding()]
  param([string]$ItemType, [string]$Path, [switch]$Force)
  $s = Read-DoubleState
  Assert-DoubleWorks $s 'New-Item'
  if ($ItemType -ne 'Directory') { throw "New-Item double: only -ItemType Directory, not '$ItemType'" }
  $drive = $Path.Substring(0, 2).ToUpperInvariant()
  if (-not ($s.ContainsKey('volumes') -and $s['volumes'].ContainsKey($drive))) { throw "Cannot find drive. A drive with the name '$($drive.Substring(0, 1))' does not exist." }
  Assert-NoReparseAbove $s $Path 'New-Item'
  $chain = New-Object System.Collections.Generic.List[string]
  $p = $Path
  while ($p -and $null -eq (Find-FsKey $s $p)) { $chain.Insert(0, $p); $p = Get-ParentPath $p }
  if ($chain.Count -eq 0) { throw "An item with the specified name $Path already exists." }
  foreach ($c in $chain) {
    $parent = $s['files'][(Find-FsKey $s (Get-ParentPath $c))]
    $acl = @(foreach ($a in @($parent['acl'])) {
        if ([string]$a['inheritance'] -notmatch 'ContainerInherit') { continue }
        $noPropagate = [string]$a['propagation'] -match 'NoPropagateInherit'
        $inheritance = [string]$a['inheritance']
        if ($noPropagate) { $inheritance = 'None' }
        @{ sid = $a['sid']; type = $a['type']; rights = $a['rights']; inheritance = $inheritance; propagation = 'None'; inherited = $true }
      })
    $s['files'][$c] = @{ type = 'Directory'; owner = 'S-1-5-32-544'; acl = $acl }
    Add-DoubleEvent $s 'New-Item' $c
  }
  Write-DoubleState $s
  [pscustomobject]@{ FullName = $Path; PSIsContainer = $true }
}

# LookupAccountName for NTAccount.Translate. Not a closure: GetNewClosure would cut the script
# block off from this module's functions.
function Get-AclTranslator {
  return [Func[string, string]] {
    param([string]$Name)
    $p = Resolve-DoublePrincipal (Read-DoubleState) $Name
    if ($null -eq $p) { return $null }
    return [string]$p['sid']
  }
}

function Read-DirectorySecurity([string]$Path, $Sections) {
  Import-AclDouble
  $s = Read-DoubleState
  Assert-DoubleWorks $s 'GetSecurityInfo'
  Assert-NoReparseAbove $s $Path 'DirectorySecurity'
  $key = Find-FsKey $s $Path
  # As the real constructor: DirectoryNotFoundException for a missing folder.
  if ($null -eq $key) { throw (New-Object System.IO.DirectoryNotFoundException "Could not find a part of the path '$Path'.") }
  $i = $s['files'][$key]
  if ($i.ContainsKey('reparse') -and $null -ne $i['reparse']) { throw "DirectorySecurity double: '$key' is a reparse point; the host script must not follow it" }
  $aces = [GmsaDoubles.AceData[]]@(foreach ($a in @($i['acl'])) {
      $d = New-Object GmsaDoubles.AceData
      $d.Sid = $a['sid']; $d.Type = $a['type']; $d.Rights = [int]$a['rights']
      $d.Inheritance = $a['inheritance']; $d.Propagation = $a['propagation']; $d.Inherited = [bool]$a['inherited']
      $d
    })
  $protected = $i.ContainsKey('protected') -and [bool]$i['protected']
  return New-Object GmsaDoubles.DirectorySecurity -ArgumentList $key, ([System.Security.AccessControl.AccessControlSections]$Sections), $i['owner'], $protected, $aces, (Get-AclTranslator)
}

# The access-control types the host script makes; any other type goes to the real New-Object.
function New-Object {
  [CmdletBinding(DefaultParameterSetName = 'Net')]
  param(
    [Parameter(ParameterSetName = 'Net', Mandatory = $true, Position = 0)][string]$TypeName,
    [Parameter(ParameterSetName = 'Net', Position = 1)][Alias('Args')][object[]]$ArgumentList,
    [Parameter(ParameterSetName = 'Com', Mandatory = $true)][string]$ComObject,
    [System.Collections.IDictionary]$Property
  )
  $a = @($ArgumentList)
  switch ($TypeName) {
    'System.Security.Principal.SecurityIdentifier' { Import-AclDouble; $PSCmdlet.WriteObject((New-Object GmsaDoubles.SecurityIdentifier ([string]$a[0])), $false); return }
    'System.Security.Principal.NTAccount' { Import-AclDouble; $PSCmdlet.WriteObject((New-Object GmsaDoubles.NTAccount ([string]$a[0])), $false); return }
    'System.Security.AccessControl.FileSystemAccessRule' {
      Import-AclDouble
      if ($a.Count -ne 5) { throw 'FileSystemAccessRule double: the (identity, rights, inheritanceFlags, propagationFlags, type) constructor only' }
      $identity = $a[0]
      # The (string identity, ...) overload names an account (NTAccount).
      if ($identity -is [string]) { $identity = New-Object GmsaDoubles.NTAccount $identity }
      $rule = New-Object GmsaDoubles.FileSystemAccessRule -ArgumentList $identity, ([System.Security.AccessControl.FileSystemRights]$a[1]), `
        ([System.Security.AccessControl.InheritanceFlags]$a[2]), ([System.Security.AccessControl.PropagationFlags]$a[3]), ([System.Security.AccessControl.AccessControlType]$a[4])
      $PSCmdlet.WriteObject($rule, $false)
      return
    }
    'System.IO.DirectoryInfo' {
      # The folder as DirectoryInfo stands for it, with the SetAccessControl of Windows
      # PowerShell 5.1 (the instance method that DirectorySecurity.Persist backs).
      if ($a.Count -ne 1) { throw 'DirectoryInfo double: the (path) constructor only' }
      $dir = [pscustomobject]@{ FullName = [string]$a[0] }
      $dir | Add-Member -MemberType ScriptMethod -Name SetAccessControl -Value { param($AclObject) Set-DirectoryAclDouble $this.FullName $AclObject }
      $PSCmdlet.WriteObject($dir, $false)
      return
    }
    'System.Security.AccessControl.DirectorySecurity' {
      if ($a.Count -ne 2) { throw 'DirectorySecurity double: the (name, includeSections) constructor only' }
      $PSCmdlet.WriteObject((Read-DirectorySecurity ([string]$a[0]) $a[1]), $false)
      return
    }
  }
  $o = Microsoft.PowerShell.Utility\New-Object @PSBoundParameters
  $PSCmdlet.WriteObject($o, $false)
}

function Get-Acl {
  [CmdletBinding()]
  param([string]$LiteralPath)
  # As the real cmdlet: owner, group and access (so Set-Acl of it writes the owner too).
  $PSCmdlet.WriteObject((Read-DirectorySecurity $LiteralPath ([System.Security.AccessControl.AccessControlSections]'Owner, Group, Access')), $false)
}

# Writes a DirectorySecurity's DACL (its explicit entries; Windows recomputes the inherited ones
# from the parent) and, when the object carries an owner, the owner too, which Windows allows
# only for a SID the caller may assign (here: Administrators): "The security identifier is not
# allowed to be the owner of this object." Returns the folder's state entry.
function Write-DaclDouble($State, [string]$LiteralPath, $AclObject, [string]$Command) {
  Assert-DoubleWorks $State $Command
  Assert-NoReparseAbove $State $LiteralPath $Command
  $key = Find-FsKey $State $LiteralPath
  if ($null -eq $key) { throw (New-NotFoundRecord $LiteralPath).Exception }
  $i = $State['files'][$key]
  if ($i.ContainsKey('reparse') -and $null -ne $i['reparse']) { throw "$Command double: '$key' is a reparse point; the host script must not write through it" }
  if ($AclObject -isnot [GmsaDoubles.DirectorySecurity]) { throw "$Command double: the ACL must be a DirectorySecurity" }
  $owner = $AclObject.GetOwner([System.Security.Principal.SecurityIdentifier])
  if ($null -ne $owner) {
    if ($owner.Value -ne 'S-1-5-32-544') { throw 'The security identifier is not allowed to be the owner of this object.' }
    if ($owner.Value -ne $i['owner']) { Add-DoubleEvent $State "$Command owner" "$key owner=$($owner.Value)" }
    $i['owner'] = $owner.Value
  }
  $explicit = @(foreach ($e in $AclObject.ExplicitEntries()) {
      @{ sid = $e.Sid; type = $e.Type; rights = $e.Rights; inheritance = $e.Inheritance; propagation = $e.Propagation; inherited = $false }
    })
  $inherited = @(foreach ($a in @($i['acl'])) { if ([bool]$a['inherited']) { $a } })
  $i['acl'] = @($explicit) + @($inherited)
  Add-DoubleEvent $State $Command ("$key " + ((@($explicit) | ForEach-Object { "$($_['type']) $($_['sid']) $($_['rights']) $($_['inheritance'])/$($_['propagation'])" }) -join '; '))
  return $i
}

# Set-Acl -LiteralPath -AclObject, as the FileSystem provider does it: it first writes every
# section (AccessControlSections.All) with SeRestorePrivilege enabled, which an elevated
# administrator holds; an object read without its SACL then writes an empty SACL, and the
# folder's audit entries are gone. (Without the privilege it retries without the SACL, except
# where the folder's DACL is protected: its check compares AreAuditRulesProtected with
# AreAccessRulesProtected, so it fails there with PrivilegeNotHeldException.)
function Set-Acl {
  [CmdletBinding()]
  param([string]$LiteralPath, [string]$Path, $AclObject)
  if ($PSBoundParameters.ContainsKey('Path')) { throw 'Set-Acl double: -Path takes wildcards; names from Git go to -LiteralPath' }
  $s = Read-DoubleState
  $i = Write-DaclDouble $s $LiteralPath $AclObject 'Set-Acl'
  if (($AclObject.Sections -band [System.Security.AccessControl.AccessControlSections]::Audit) -eq 0 -and $i.ContainsKey('audit') -and @($i['audit']).Count -gt 0) {
    $i['audit'] = @()
    Add-DoubleEvent $s 'Set-Acl audit' "$LiteralPath SACL written empty"
  }
  Write-DoubleState $s
}

# DirectoryInfo.SetAccessControl (Windows PowerShell 5.1) and
# FileSystemAclExtensions.SetAccessControl (PowerShell 7): DirectorySecurity.Persist writes only
# the sections the object changed, so a DACL-only object writes the DACL alone.
function Set-DirectoryAclDouble([string]$LiteralPath, $AclObject) {
  $s = Read-DoubleState
  if ($AclObject -is [GmsaDoubles.DirectorySecurity] -and -not $AclObject.AccessRulesModified) { return }
  $null = Write-DaclDouble $s $LiteralPath $AclObject 'SetAccessControl'
  Write-DoubleState $s
}
