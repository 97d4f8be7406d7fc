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

  The Windows-only commands this script calls (Test-ADServiceAccount, Get-/Add-LocalGroupMember,
  secedit, klist, Get-CimInstance/Invoke-CimMethod, Restart-Service, Get-/Set-ScheduledTask,
  New-ScheduledTaskPrincipal, Get-/Reset-IISServerManager) are called by their plain names, so
  the Linux test doubles (functions, which PowerShell resolves before cmdlets and executables)
  stand in for them without any change to this file.
#>
param([string]$RequestJson)

$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$WarningPreference = 'SilentlyContinue'
$InformationPreference = 'SilentlyContinue'
$VerbosePreference = 'SilentlyContinue'
Set-StrictMode -Version 2.0

# Must equal HOST_CONTRACT_VERSION in contract.ts.
$ContractVersion = 1

$LogonRights = @('SeServiceLogonRight', 'SeBatchLogonRight')
$RestartPolicies = @('OnChange', 'Never')
$RunLevels = @('Limited', 'Highest')

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
      LocalGroups          = Read-StringList $b 'localGroups' $w $null
      LogonRights          = Read-StringList $b 'logonRights' $w $LogonRights
      RightsGrantedBefore  = Read-StringList $b 'rightsGrantedBefore' $w $LogonRights
      PurgeKerberosTickets = Read-Bool $b 'purgeKerberosTickets' $w
      RecentlyAllowed      = Read-Bool $b 'recentlyAllowed' $w
      ObserveOnly          = Read-Bool $b 'observeOnly' $w
      Services             = New-Object System.Collections.Generic.List[object]
      ScheduledTasks       = New-Object System.Collections.Generic.List[object]
      IisAppPools          = New-Object System.Collections.Generic.List[object]
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
  param([string]$Item, [string]$Name, $Observed, $Desired, [string]$Action, [string]$Reason, [string]$ErrorText, $Restarted)
  $o = [ordered]@{ item = $Item; name = $Name; observed = $Observed; desired = $Desired; action = $Action }
  if ($Reason) { $o['reason'] = $Reason }
  if ($null -ne $Restarted) { $o['restarted'] = [bool]$Restarted }
  if ($ErrorText) { $o['error'] = $ErrorText }
  return $o
}

# One line, bounded: error text goes into conditions and logs.
function Format-ErrorText($ErrorRecord) {
  $m = $ErrorRecord
  if ($ErrorRecord -is [System.Management.Automation.ErrorRecord]) { $m = $ErrorRecord.Exception.Message }
  elseif ($ErrorRecord -is [System.Exception]) { $m = $ErrorRecord.Message }
  $m = ([string]$m) -replace '\s+', ' '
  if ($m.Length -gt 500) { $m = $m.Substring(0, 500) + '...' }
  return $m.Trim()
}

function Test-SameIdentity([string]$Observed, $Ctx, [string]$Account) {
  if ([string]::IsNullOrEmpty($Observed)) { return $false }
  # Windows shows a gMSA as DOMAIN\name$; Task Scheduler sometimes drops the domain.
  return ($Observed -eq "$($Ctx.Domain)\$Account`$" -or $Observed -eq "$Account`$")
}

# ---------------------------------------------------------------------------------------------
# Retrievability (Test-ADServiceAccount) and the fresh-ticket wait
# ---------------------------------------------------------------------------------------------

function Test-Account([string]$Account) {
  # Test-ADServiceAccount warns (and returns False) when the host may not retrieve the password.
  $r = @(Test-ADServiceAccount -Identity $Account -WarningAction SilentlyContinue)
  if ($r.Count -eq 0) { throw 'Test-ADServiceAccount returned nothing' }
  return ($r[$r.Count - 1] -eq $true)
}

function Invoke-TicketPurge {
  # LUID 0x3e7 is the machine account (SYSTEM): its TGT still carries the groups the computer
  # belonged to when it was issued, so a host just added to the allowed group needs a new one.
  $null = klist -li 0x3e7 purge
  if ($LASTEXITCODE -ne 0) { throw "klist -li 0x3e7 purge failed with exit code $LASTEXITCODE" }
}

function Invoke-Retrievable($B, $Ctx, $Items) {
  $account = $B.Account
  try {
    if (Test-Account $account) {
      $Items.Add((New-ResultItem -Item 'retrievable' -Name $account -Observed $true -Desired $true -Action 'none'))
      return $true
    }
    if (-not $B.RecentlyAllowed) {
      $Items.Add((New-ResultItem -Item 'retrievable' -Name $account -Observed $false -Desired $true -Action 'failed' -Reason 'NotRetrievable' `
            -ErrorText 'this host may not retrieve the password: it is not allowed by the gMSA''s msDS-GroupMSAMembership (directly or through a group), or it does not support the account''s Kerberos encryption types'))
      return $false
    }
    if ($B.Mode -eq 'apply' -and $B.PurgeKerberosTickets) {
      Invoke-TicketPurge
      if (Test-Account $account) {
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
# Local groups
# ---------------------------------------------------------------------------------------------

function Invoke-LocalGroup([string]$Group, $Identity, $B, $Ctx, $Items) {
  try {
    $members = @(Get-LocalGroupMember -Name $Group)
    $isMember = $false
    foreach ($m in $members) { if (Test-SameIdentity ([string]$m.Name) $Ctx $B.Account) { $isMember = $true } }
    if ($isMember) {
      $Items.Add((New-ResultItem -Item 'localGroup' -Name $Group -Observed $true -Desired $true -Action 'none'))
    }
    elseif ($B.Mode -eq 'observe') {
      $Items.Add((New-ResultItem -Item 'localGroup' -Name $Group -Observed $false -Desired $true -Action 'would-change' -Reason 'NotMember'))
    }
    else {
      Add-LocalGroupMember -Name $Group -Member $Identity
      $Items.Add((New-ResultItem -Item 'localGroup' -Name $Group -Observed $false -Desired $true -Action 'changed' -Reason 'NotMember'))
    }
  }
  catch {
    $Items.Add((New-ResultItem -Item 'localGroup' -Name $Group -Observed $null -Desired $true -Action 'failed' -Reason 'Error' -ErrorText (Format-ErrorText $_)))
  }
}

# ---------------------------------------------------------------------------------------------
# Logon rights through the security policy (secedit export / configure)
# ---------------------------------------------------------------------------------------------

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
    $null = secedit /export /cfg $cfg /areas USER_RIGHTS /quiet
    if ($LASTEXITCODE -ne 0) { throw "secedit /export failed with exit code $LASTEXITCODE" }
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
    $null = secedit /configure /db $db /cfg $cfg /areas USER_RIGHTS /quiet
    if ($LASTEXITCODE -ne 0) { throw "secedit /configure failed with exit code $LASTEXITCODE" }
  }
  finally { Remove-WorkDir $dir }
}

function Resolve-AccountSid([string]$Identity) {
  try {
    $nt = New-Object System.Security.Principal.NTAccount $Identity
    return $nt.Translate([System.Security.Principal.SecurityIdentifier]).Value
  }
  catch {
    # Not resolvable here (no domain connectivity, or not Windows): entries are matched by name.
    return $null
  }
}

function Test-HoldsRight($Entries, [string]$Sid, $Ctx, [string]$Account) {
  foreach ($e in $Entries) {
    if ($Sid -and $e -eq "*$Sid") { return $true }
    if (Test-SameIdentity $e $Ctx $Account) { return $true }
  }
  return $false
}

function Invoke-LogonRight([string]$Right, $Identity, $B, $Ctx, $Items) {
  try {
    if ($null -eq $Ctx.Sids[$Identity]) { $Ctx.Sids[$Identity] = [string](Resolve-AccountSid $Identity) }
    $sid = $Ctx.Sids[$Identity]
    $rights = Get-UserRights
    $entries = New-Object System.Collections.Generic.List[string]
    if ($rights.ContainsKey($Right)) { $entries = $rights[$Right] }
    if (Test-HoldsRight $entries $sid $Ctx $B.Account) {
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
    $entry = $Identity
    if ($sid) { $entry = "*$sid" }
    $new = New-Object System.Collections.Generic.List[string]
    foreach ($e in $entries) { $new.Add($e) }
    $new.Add($entry)
    Set-UserRight $Right $new
    # Read back: secedit can succeed while a domain policy keeps the right's list in force.
    $after = Get-UserRights
    if (-not ($after.ContainsKey($Right) -and (Test-HoldsRight $after[$Right] $sid $Ctx $B.Account))) {
      throw "secedit reported success but $Right does not list $Identity afterwards (a domain policy may define this right)"
    }
    $Items.Add((New-ResultItem -Item 'logonRight' -Name $Right -Observed $false -Desired $true -Action 'changed' -Reason $reason))
  }
  catch {
    $Items.Add((New-ResultItem -Item 'logonRight' -Name $Right -Observed $null -Desired $true -Action 'failed' -Reason 'Error' -ErrorText (Format-ErrorText $_)))
  }
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
    if (Test-SameIdentity $observed $Ctx $B.Account) {
      $Items.Add((New-ResultItem -Item 'service' -Name $name -Observed $observed -Desired $Identity -Action 'none'))
      return
    }
    if ($B.Mode -eq 'observe') {
      $Items.Add((New-ResultItem -Item 'service' -Name $name -Observed $observed -Desired $Identity -Action 'would-change' -Reason 'WrongIdentity'))
      return
    }
    # A gMSA logs on with an empty password: Windows fetches the managed password itself.
    $r = Invoke-CimMethod -InputObject $svc -MethodName Change -Arguments @{ StartName = $Identity; StartPassword = '' }
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
        $Items.Add((New-ResultItem -Item 'service' -Name $name -Observed $observed -Desired $Identity -Action 'failed' -Reason 'WrongIdentity' -Restarted $false `
              -ErrorText ("the logon account was changed, but the restart failed, so the service still runs as $observed until it restarts: " + (Format-ErrorText $_))))
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
    if ((Test-SameIdentity ([string]$p.UserId) $Ctx $B.Account) -and [string]$p.LogonType -eq 'Password' -and [string]$p.RunLevel -eq $T.RunLevel) {
      $Items.Add((New-ResultItem -Item 'scheduledTask' -Name $label -Observed $observed -Desired $desired -Action 'none'))
      return
    }
    if ($B.Mode -eq 'observe') {
      $Items.Add((New-ResultItem -Item 'scheduledTask' -Name $label -Observed $observed -Desired $desired -Action 'would-change' -Reason 'WrongIdentity'))
      return
    }
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
# IIS application pools (IISAdministration: a ServerManager, looked up by exact name)
# ---------------------------------------------------------------------------------------------

function Get-FreshServerManager {
  # After CommitChanges a ServerManager's objects are read-only ("The configuration object is
  # read only, because it has been committed"): start from a fresh one for every pool.
  Reset-IISServerManager -Confirm:$false
  return Get-IISServerManager
}

function Invoke-AppPool($P, $Identity, $B, $Ctx, $Items) {
  $name = $P.Name
  $desired = "SpecificUser $Identity"
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
    if ($type -eq 'SpecificUser' -and (Test-SameIdentity $user $Ctx $B.Account)) {
      $Items.Add((New-ResultItem -Item 'iisAppPool' -Name $name -Observed $observed -Desired $desired -Action 'none'))
      return
    }
    if ($B.Mode -eq 'observe') {
      $Items.Add((New-ResultItem -Item 'iisAppPool' -Name $name -Observed $observed -Desired $desired -Action 'would-change' -Reason 'WrongIdentity'))
      return
    }
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
}

# ---------------------------------------------------------------------------------------------
# One binding, one request
# ---------------------------------------------------------------------------------------------

function Invoke-Binding($B, $Ctx) {
  $items = New-Object System.Collections.Generic.List[object]
  $identity = "$($Ctx.Domain)\$($B.Account)`$"
  $retrievable = Invoke-Retrievable $B $Ctx $items
  # Items are independent: each has its own try/catch, so one failure never stops the others.
  foreach ($g in $B.LocalGroups) { Invoke-LocalGroup $g $identity $B $Ctx $items }
  foreach ($r in $B.LogonRights) { Invoke-LogonRight $r $identity $B $Ctx $items }
  foreach ($s in $B.Services) { Invoke-Service $s $identity $B $Ctx $items }
  foreach ($t in $B.ScheduledTasks) { Invoke-ScheduledTask $t $identity $B $Ctx $items }
  foreach ($p in $B.IisAppPools) { Invoke-AppPool $p $identity $B $Ctx $items }
  return [ordered]@{
    name        = $B.Name
    account     = $B.Account
    retrievable = $retrievable
    install     = 'NotNeeded'
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

$ctx = @{ Domain = $null; Services = $null; Tasks = $null; Sids = @{}; Output = $null }
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
