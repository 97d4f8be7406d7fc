<#
  Stands in for `pwsh -EncodedCommand <base64>` on a test host: loads the Windows doubles for
  the host whose state file is -StatePath, then runs the encoded command (the transport's
  bootstrap, unchanged) exactly as -EncodedCommand would: UTF-16LE base64, run as a script block.

  The ssh driver's `shell` for a test host is
    pwsh -NoProfile -NonInteractive -File <dir>/launcher.ps1 -StatePath <state.json>
  and the driver appends `-EncodedCommand <bootstrap>` as it does for a real host.
#>
param(
  [Parameter(Mandatory)][string]$StatePath,
  [Parameter(Mandatory)][string]$EncodedCommand
)

$global:GmsaDoubleStatePath = $StatePath
. (Join-Path $PSScriptRoot 'doubles.ps1')
# Windows sets COMPUTERNAME; the host script checks the request was meant for this machine.
$env:COMPUTERNAME = (Read-DoubleState)['computer']
$command = [System.Text.Encoding]::Unicode.GetString([System.Convert]::FromBase64String($EncodedCommand))
& ([ScriptBlock]::Create($command))
