<#
  Test doubles for the Windows-only commands gmsa-host.ps1 calls, for PowerShell 7 on Linux.

  Dot-source this file (launcher.ps1 does) after setting $global:GmsaDoubleStatePath to a JSON
  file that stands for one Windows host: its local groups, user rights, services, scheduled
  tasks, IIS app pools, Kerberos ticket cache and how to reach the DC (see state.ts for the
  shape). PowerShell resolves functions before cmdlets and executables, so the host script,
  unchanged, calls these. Every change goes to the JSON file at once, so a second run (or the
  test, reading the file) sees it; every call is appended to `events`.

  Test-ADServiceAccount asks the real question of the real DC: it binds as the host's computer
  account (HOST$) over LDAPS with ldapsearch and reads the gMSA's msDS-ManagedPassword, which
  Samba (4.21+) returns only when msDS-GroupMSAMembership allows that computer.
#>

Set-StrictMode -Version 2.0

# The state is read once per process and kept: within one run of the host script only the
# doubles change it (tests edit the file between runs), and re-parsing it on every call would
# make the doubles, not the script, dominate a run's CPU time.
$global:GmsaDoubleState = $null

function Read-DoubleState {
  if ($null -eq $global:GmsaDoubleState) {
    $global:GmsaDoubleState = [System.IO.File]::ReadAllText($global:GmsaDoubleStatePath) | ConvertFrom-Json -AsHashtable
  }
  return $global:GmsaDoubleState
}

function Write-DoubleState($State) {
  # Write then rename: a reader never sees half a file.
  $global:GmsaDoubleState = $State
  $tmp = "$($global:GmsaDoubleStatePath).$PID.tmp"
  [System.IO.File]::WriteAllText($tmp, (ConvertTo-Json -InputObject $State -Depth 20))
  [System.IO.File]::Move($tmp, $global:GmsaDoubleStatePath, $true)
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

# RFC 4515 escaping for a value inside an LDAP filter.
function ConvertTo-LdapFilterValue([string]$Value) {
  $sb = New-Object System.Text.StringBuilder
  foreach ($b in [System.Text.Encoding]::UTF8.GetBytes($Value)) {
    if ($b -eq 0x2a -or $b -eq 0x28 -or $b -eq 0x29 -or $b -eq 0x5c -or $b -eq 0 -or $b -ge 0x80) { $null = $sb.Append(('\{0:x2}' -f $b)) }
    else { $null = $sb.Append([char]$b) }
  }
  return $sb.ToString()
}

function Test-DcRetrievable($Ad, [string]$Account) {
  $prefix = @($Ad['command'])
  $exe = $prefix[0]
  $rest = @()
  if ($prefix.Count -gt 1) { $rest = $prefix[1..($prefix.Count - 1)] }
  $filter = '(sAMAccountName=' + (ConvertTo-LdapFilterValue "$Account`$") + ')'
  $env:LDAPTLS_CACERT = $Ad['caFile']
  $env:LDAPTLS_REQCERT = 'demand'
  $out = & $exe @rest -x -LLL -o ldif-wrap=no -H $Ad['url'] -D $Ad['bindDn'] -y $Ad['passwordFile'] -b $Ad['baseDn'] $filter 'sAMAccountName' 'msDS-ManagedPassword' 2>&1
  $code = $LASTEXITCODE
  $text = (@($out) | ForEach-Object { [string]$_ }) -join "`n"
  if ($code -ne 0) { throw "Test-ADServiceAccount: the DC refused the query (ldapsearch exit $code): $text" }
  if ($text -notmatch '(?m)^dn:') { throw "Cannot find an object with identity: '$Account' under: '$($Ad['baseDn'])'." }
  return ($text -match '(?m)^msDS-ManagedPassword::')
}

function Test-ADServiceAccount {
  [CmdletBinding()]
  param([Parameter(Mandatory)][string]$Identity)
  $s = Read-DoubleState
  Assert-DoubleWorks $s 'Test-ADServiceAccount'
  $account = $Identity.TrimEnd('$')
  $k = $s['kerberos']
  # A cached ticket answers like a Windows host with a TGT issued before its group change.
  if ($k['cacheTickets'] -and $null -ne (Find-Key $k['tickets'] $account)) {
    $result = [bool]$k['tickets'][(Find-Key $k['tickets'] $account)]
  }
  else {
    if ($s.ContainsKey('ad') -and $null -ne $s['ad']) { $result = Test-DcRetrievable $s['ad'] $account }
    else {
      $key = Find-Key $s['retrievable'] $account
      if ($null -eq $key) { throw "Cannot find an object with identity: '$account'." }
      $result = [bool]$s['retrievable'][$key]
    }
    if ($k['cacheTickets']) { $k['tickets'][$account] = $result }
  }
  Add-DoubleEvent $s 'Test-ADServiceAccount' "$account=$result"
  Write-DoubleState $s
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

function klist {
  $s = Read-DoubleState
  $line = $args -join ' '
  if ($line -ne '-li 0x3e7 purge') { $global:LASTEXITCODE = 87; return "klist double: unsupported arguments: $line" }
  $s['kerberos']['tickets'] = @{}
  Add-DoubleEvent $s 'klist' $line
  Write-DoubleState $s
  $global:LASTEXITCODE = 0
  return 'Current LogonId is 0:0x3e7', 'Ticket(s) purged!'
}

function Get-LocalGroupMember {
  [CmdletBinding()]
  param([Parameter(Mandatory)][string]$Name)
  $s = Read-DoubleState
  Assert-DoubleWorks $s 'Get-LocalGroupMember'
  $key = Find-Key $s['localGroups'] $Name
  if ($null -eq $key) { throw "Group $Name was not found." }
  foreach ($m in @($s['localGroups'][$key])) {
    [pscustomobject]@{ Name = $m; ObjectClass = 'User'; PrincipalSource = 'ActiveDirectory' }
  }
}

function Add-LocalGroupMember {
  [CmdletBinding()]
  param([Parameter(Mandatory)][string]$Name, [Parameter(Mandatory)][string[]]$Member)
  $s = Read-DoubleState
  Assert-DoubleWorks $s 'Add-LocalGroupMember'
  $key = Find-Key $s['localGroups'] $Name
  if ($null -eq $key) { throw "Group $Name was not found." }
  foreach ($m in $Member) {
    if (@($s['localGroups'][$key]) -contains $m) { throw "$m is already a member of group $key." }
    $s['localGroups'][$key] = @($s['localGroups'][$key]) + @($m)
  }
  Add-DoubleEvent $s 'Add-LocalGroupMember' "$key <- $($Member -join ',')"
  Write-DoubleState $s
}

function Remove-LocalGroupMember {
  [CmdletBinding()]
  param([Parameter(Mandatory)][string]$Name, [Parameter(Mandatory)][string[]]$Member)
  $s = Read-DoubleState
  $key = Find-Key $s['localGroups'] $Name
  if ($null -eq $key) { throw "Group $Name was not found." }
  $s['localGroups'][$key] = @(@($s['localGroups'][$key]) | Where-Object { $Member -notcontains $_ })
  Add-DoubleEvent $s 'Remove-LocalGroupMember' "$key -> $($Member -join ',')"
  Write-DoubleState $s
}

# secedit /export /cfg FILE /areas USER_RIGHTS [/quiet]    writes the rights as Windows does (UTF-16 INF)
# secedit /configure /db DB /cfg FILE /areas USER_RIGHTS   sets each right listed in FILE to exactly its list
function secedit {
  $s = Read-DoubleState
  $opts = @{}
  $verb = $null
  for ($i = 0; $i -lt $args.Count; $i++) {
    $a = [string]$args[$i]
    switch ($a) {
      '/export' { $verb = 'export' }
      '/configure' { $verb = 'configure' }
      '/quiet' { }
      default {
        if ($a.StartsWith('/') -and $i + 1 -lt $args.Count) { $opts[$a] = [string]$args[$i + 1]; $i++ }
        else { $global:LASTEXITCODE = 87; return "secedit double: unexpected argument $a" }
      }
    }
  }
  if ($opts['/areas'] -ne 'USER_RIGHTS' -or -not $opts['/cfg']) { $global:LASTEXITCODE = 87; return 'secedit double: only /areas USER_RIGHTS with /cfg' }
  if ($verb -eq 'export') {
    Assert-DoubleWorks $s 'secedit /export'
    $lines = @('[Unicode]', 'Unicode=yes', '[System Access]', 'MinimumPasswordAge = 1', '[Privilege Rights]')
    foreach ($r in @($s['rights'].Keys | Sort-Object)) {
      $holders = @($s['rights'][$r])
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
      $s['rights'][$name] = @($t.Substring($t.IndexOf('=') + 1).Split(',') | ForEach-Object { $_.Trim() } | Where-Object { $_ })
      Add-DoubleEvent $s 'secedit /configure' "$name = $($s['rights'][$name] -join ',')"
    }
    Write-DoubleState $s
  }
  else { $global:LASTEXITCODE = 87; return 'secedit double: /export or /configure' }
  $global:LASTEXITCODE = 0
  return 'The task has completed successfully.'
}

function Get-CimInstance {
  [CmdletBinding()]
  param([Parameter(Mandatory)][string]$ClassName)
  $s = Read-DoubleState
  Assert-DoubleWorks $s 'Get-CimInstance'
  if ($ClassName -ne 'Win32_Service') { throw "Get-CimInstance double: only Win32_Service, not $ClassName" }
  foreach ($svc in @($s['services'])) {
    $o = [pscustomobject]@{ Name = $svc['Name']; StartName = $svc['StartName']; State = $svc['State'] }
    $o.PSObject.TypeNames.Insert(0, 'Microsoft.Management.Infrastructure.CimInstance#root/cimv2/Win32_Service')
    $o
  }
}

function Invoke-CimMethod {
  [CmdletBinding()]
  param([Parameter(Mandatory)]$InputObject, [Parameter(Mandatory)][string]$MethodName, [hashtable]$Arguments)
  $s = Read-DoubleState
  Assert-DoubleWorks $s 'Invoke-CimMethod'
  if ($MethodName -ne 'Change') { throw "Invoke-CimMethod double: only Change, not $MethodName" }
  $svc = @($s['services']) | Where-Object { $_['Name'] -eq $InputObject.Name } | Select-Object -First 1
  if ($null -eq $svc) { throw 'Not found' }
  if ($svc.ContainsKey('changeReturnValue')) { return [pscustomobject]@{ ReturnValue = [uint32]$svc['changeReturnValue'] } }
  $svc['StartName'] = $Arguments['StartName']
  $svc['LastStartPassword'] = $Arguments['StartPassword']
  Add-DoubleEvent $s 'Win32_Service.Change' "$($svc['Name']) StartName=$($Arguments['StartName'])"
  Write-DoubleState $s
  return [pscustomobject]@{ ReturnValue = [uint32]0 }
}

function Restart-Service {
  [CmdletBinding()]
  param([Parameter(Mandatory)][string[]]$Name, [switch]$Force)
  $s = Read-DoubleState
  Assert-DoubleWorks $s 'Restart-Service'
  $hit = $false
  foreach ($svc in @($s['services'])) {
    foreach ($pattern in $Name) {
      # The real cmdlet treats -Name as a wildcard pattern.
      if ($svc['Name'] -like $pattern) {
        $svc['Restarts'] = 1 + [int]$(if ($svc.ContainsKey('Restarts')) { $svc['Restarts'] } else { 0 })
        Add-DoubleEvent $s 'Restart-Service' $svc['Name']
        $hit = $true
      }
    }
  }
  if (-not $hit) { throw "Cannot find any service with service name '$($Name -join ',')'." }
  Write-DoubleState $s
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
      Principal = [pscustomobject]@{ UserId = $t['UserId']; LogonType = $t['LogonType']; RunLevel = $t['RunLevel'] }
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

function Reset-IISServerManager {
  [CmdletBinding(SupportsShouldProcess)]
  param()
}

# A ServerManager-like object: ApplicationPools[name] (exact, case-insensitive), each pool with
# ProcessModel.IdentityType/UserName/Password, State and Recycle(); CommitChanges() writes back.
function Get-IISServerManager {
  [CmdletBinding()]
  param()
  $s = Read-DoubleState
  Assert-DoubleWorks $s 'Get-IISServerManager'
  $pools = @{}
  foreach ($p in @($s['appPools'])) {
    $pool = [pscustomobject]@{
      Name         = $p['Name']
      State        = $p['State']
      ProcessModel = [pscustomobject]@{ IdentityType = $p['IdentityType']; UserName = $p['UserName']; Password = $p['Password'] }
    }
    $pool | Add-Member -MemberType ScriptMethod -Name Recycle -Value {
      $st = Read-DoubleState
      Assert-DoubleWorks $st 'Recycle'
      $e = @($st['appPools']) | Where-Object { $_['Name'] -eq $this.Name } | Select-Object -First 1
      $e['Recycles'] = 1 + [int]$(if ($e.ContainsKey('Recycles')) { $e['Recycles'] } else { 0 })
      Add-DoubleEvent $st 'ApplicationPool.Recycle' $this.Name
      Write-DoubleState $st
      return 'Starting'
    }
    $pools[$p['Name']] = $pool
  }
  $sm = [pscustomobject]@{ ApplicationPools = $pools }
  $sm | Add-Member -MemberType ScriptMethod -Name CommitChanges -Value {
    $st = Read-DoubleState
    Assert-DoubleWorks $st 'CommitChanges'
    foreach ($e in @($st['appPools'])) {
      $live = $this.ApplicationPools[$e['Name']]
      if ($null -eq $live) { continue }
      $pm = $live.ProcessModel
      if ($e['IdentityType'] -ne [string]$pm.IdentityType -or $e['UserName'] -ne [string]$pm.UserName) {
        Add-DoubleEvent $st 'ServerManager.CommitChanges' "$($e['Name']) $($pm.IdentityType) $($pm.UserName)"
      }
      $e['IdentityType'] = [string]$pm.IdentityType
      $e['UserName'] = [string]$pm.UserName
      $e['Password'] = [string]$pm.Password
    }
    Write-DoubleState $st
  }
  return $sm
}
