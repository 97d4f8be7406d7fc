<#
  Stands in for a Windows host whose AppLocker or WDAC policy puts PowerShell in Constrained
  Language Mode (Linux has no such policy): takes `-EncodedCommand <base64>` as pwsh does, and
  runs that command in a ConstrainedLanguage session. The command goes through a file because a
  script block made in FullLanguage would keep FullLanguage.
#>
param([Parameter(Mandatory)][string]$EncodedCommand)

$command = [System.Text.Encoding]::Unicode.GetString([System.Convert]::FromBase64String($EncodedCommand))
$file = [System.IO.Path]::Combine([System.IO.Path]::GetTempPath(), "gmsa-clm-$PID.ps1")
[System.IO.File]::WriteAllText($file, $command)
try {
  $ExecutionContext.SessionState.LanguageMode = 'ConstrainedLanguage'
  & $file
}
finally { Remove-Item -LiteralPath $file -Force }
