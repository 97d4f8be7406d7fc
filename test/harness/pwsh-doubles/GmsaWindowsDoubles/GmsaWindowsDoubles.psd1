@{
  RootModule        = 'GmsaWindowsDoubles.psm1'
  ModuleVersion     = '1.0.0'
  GUID              = '6f0c8a52-3b7e-4d1a-9c55-2e8d4f7a1b90'
  Description       = 'Test doubles of the Windows commands gmsa-host.ps1 calls (tests only).'
  PowerShellVersion = '7.2'
  # Listed, so that PowerShell autoloads the module when the host script calls one of them.
  FunctionsToExport = @(
    'Test-ADServiceAccount', 'Install-ADServiceAccount', 'klist', 'Get-LocalGroupMember', 'Add-LocalGroupMember',
    'secedit', 'Get-CimInstance', 'Invoke-CimMethod', 'Restart-Service', 'Get-ScheduledTask',
    'New-ScheduledTaskPrincipal', 'Set-ScheduledTask', 'Get-Acl', 'Set-Acl', 'Get-Item', 'New-Item', 'New-Object'
  )
  CmdletsToExport   = @()
  AliasesToExport   = @()
  VariablesToExport = @()
}
