<#
  Checks that a script runs on Windows PowerShell 5.1, without Windows: parses it with this
  PowerShell's parser and walks the AST for syntax added after 5.1, cmdlets and parameters added
  after 5.1, and compiles every Add-Type source it holds as C# 5 (what 5.1's Add-Type compiles
  with, the .NET Framework's csc) while refusing APIs .NET Framework 4.7.2 does not have.
  Prints one line per problem ("LINE: what"), nothing when the script is fine.
#>
param([Parameter(Mandatory)][string]$Path)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

$tokens = $null
$parseErrors = $null
$ast = [System.Management.Automation.Language.Parser]::ParseFile($Path, [ref]$tokens, [ref]$parseErrors)
$problems = [System.Collections.Generic.List[string]]::new()
foreach ($e in $parseErrors) { $problems.Add("$($e.Extent.StartLineNumber): does not parse: $($e.Message)") }

# Cmdlets that PowerShell 5.1 does not have.
$newCmdlets = @(
  'Join-String', 'Test-Json', 'Get-Error', 'ConvertFrom-Markdown', 'Show-Markdown', 'Get-MarkdownOption',
  'Set-MarkdownOption', 'Get-Uptime', 'Remove-Alias', 'Remove-Service', 'ConvertTo-CliXml', 'ConvertFrom-CliXml',
  'Get-SecureRandom', 'Get-PSSubsystem', 'Get-ExperimentalFeature', 'Enable-ExperimentalFeature', 'Disable-ExperimentalFeature'
)
# Parameters added after 5.1 to cmdlets 5.1 has.
$newParameters = @{
  'ConvertFrom-Json'  = @('AsHashtable', 'Depth', 'NoEnumerate', 'DateKind')
  'ConvertTo-Json'    = @('AsArray', 'EnumsAsStrings', 'EscapeHandling')
  'ForEach-Object'    = @('Parallel', 'ThrottleLimit', 'TimeoutSeconds', 'AsJob', 'UseNewRunspace')
  'Get-Content'       = @('AsByteStream')
  'Set-Content'       = @('AsByteStream')
  'Add-Content'       = @('AsByteStream')
  'Import-Module'     = @('UseWindowsPowerShell', 'SkipEditionCheck')
  'Split-Path'        = @('Extension', 'LeafBase')
  'Sort-Object'       = @('Top', 'Bottom', 'Stable')
  'Get-Random'        = @('Shuffle')
  'Select-String'     = @('Raw', 'NoEmphasis')
  'Select-Object'     = @('SkipIndex', 'CaseInsensitive')
  'Measure-Object'    = @('AllStats', 'StandardDeviation')
  'Join-Path'         = @('AdditionalChildPath', 'Extension')
  'Resolve-Path'      = @('RelativeBasePath')
  'Get-Date'          = @('AsUTC', 'UnixTimeSeconds')
  'Out-String'        = @('NoNewline')
  'Test-Connection'   = @('TargetName', 'Ping', 'Traceroute', 'MtuSize', 'TcpPort', 'Repeat')
  'Start-Process'     = @('Environment')
  'Invoke-WebRequest' = @('SkipCertificateCheck', 'Authentication', 'Token', 'SslProtocol', 'SkipHttpErrorCheck', 'StatusCodeVariable', 'ResponseHeadersVariable', 'MaximumRetryCount', 'RetryIntervalSec', 'Form', 'NoProxy', 'HttpVersion', 'Resume', 'ConnectionTimeoutSeconds', 'OperationTimeoutSeconds')
  'Invoke-RestMethod' = @('SkipCertificateCheck', 'Authentication', 'Token', 'SslProtocol', 'SkipHttpErrorCheck', 'StatusCodeVariable', 'ResponseHeadersVariable', 'MaximumRetryCount', 'RetryIntervalSec', 'Form', 'NoProxy', 'HttpVersion', 'Resume', 'ConnectionTimeoutSeconds', 'OperationTimeoutSeconds', 'FollowRelLink')
}

$nodes = $ast.FindAll({ $true }, $true)
foreach ($n in $nodes) {
  $line = $n.Extent.StartLineNumber
  $type = $n.GetType().Name
  if ($type -eq 'TernaryExpressionAst') { $problems.Add("${line}: ternary operator (?:) is PowerShell 7") }
  elseif ($type -eq 'PipelineChainAst') { $problems.Add("${line}: pipeline chain (&& or ||) is PowerShell 7") }
  elseif ($n -is [System.Management.Automation.Language.BinaryExpressionAst] -and $n.Operator -eq 'QuestionQuestion') { $problems.Add("${line}: ?? is PowerShell 7") }
  elseif ($n -is [System.Management.Automation.Language.AssignmentStatementAst] -and $n.Operator -eq 'QuestionQuestionEquals') { $problems.Add("${line}: ??= is PowerShell 7") }
  elseif (($n -is [System.Management.Automation.Language.MemberExpressionAst] -or $n -is [System.Management.Automation.Language.IndexExpressionAst]) -and $n.NullConditional) { $problems.Add("${line}: ?. and ?[] are PowerShell 7") }
  elseif ($n -is [System.Management.Automation.Language.PipelineAst] -and $n.Background) { $problems.Add("${line}: & (background job) is PowerShell 7") }
  elseif ($n -is [System.Management.Automation.Language.ScriptBlockAst] -and $null -ne $n.CleanBlock) { $problems.Add("${line}: clean block is PowerShell 7.3") }
  elseif ($n -is [System.Management.Automation.Language.CommandAst]) {
    $name = $n.GetCommandName()
    if (-not $name) { continue }
    if ($newCmdlets -contains $name) { $problems.Add("${line}: $name is not in Windows PowerShell 5.1") }
    $key = @($newParameters.Keys | Where-Object { $_ -eq $name })
    if ($key.Count -eq 0) { continue }
    foreach ($p in $n.CommandElements) {
      if ($p -isnot [System.Management.Automation.Language.CommandParameterAst]) { continue }
      foreach ($added in $newParameters[$key[0]]) {
        # Parameters may be abbreviated: -AsHash is -AsHashtable.
        if ($added.StartsWith($p.ParameterName, [System.StringComparison]::OrdinalIgnoreCase) -and $p.ParameterName.Length -ge 2) {
          $problems.Add("${line}: $name -$added is not in Windows PowerShell 5.1")
        }
      }
    }
  }
}

# .NET APIs that .NET Framework 4.7.2 lacks (the ones a P/Invoke helper is tempted to use).
$newApis = @(
  'Span<', 'ReadOnlySpan<', 'Memory<', 'MemoryMarshal', 'CollectionsMarshal', 'NativeLibrary', 'LibraryImport',
  'PtrToStringUTF8', 'StringToCoTaskMemUTF8', 'GetLastPInvokeError', 'GetLastSystemError', 'SetLastPInvokeError',
  'HashCode', 'MathF', 'Math.Clamp', 'string.Create', 'String.Create', 'Environment.ProcessPath', 'Environment.ProcessId',
  'OperatingSystem.', 'Convert.ToHexString', 'Convert.FromHexString', 'Random.Shared', 'ThrowIfNull',
  'System.Text.Json', 'IAsyncEnumerable', 'ArgumentNullException.Throw'
)
$sources = @($ast.FindAll({ param($x) $x -is [System.Management.Automation.Language.StringConstantExpressionAst] -and $x.Value -match 'DllImport|\bnamespace\b|\bclass\b' -and $x.StringConstantType -like '*HereString' }, $true))
$i = 0
foreach ($s in $sources) {
  $line = $s.Extent.StartLineNumber
  foreach ($api in $newApis) { if ($s.Value.Contains($api)) { $problems.Add("${line}: Add-Type code uses $api, which .NET Framework 4.7.2 does not have") } }
  if ($s.Value -match "\.(StartsWith|EndsWith|Contains)\(\s*'|\b(String|string)\.Join\(\s*'|\.Split\(\s*'.'\s*,") { $problems.Add("${line}: Add-Type code uses a char overload added after .NET Framework 4.7.2: $($Matches[0])") }
  # Windows PowerShell 5.1 compiles Add-Type code with the .NET Framework's csc: C# 5.
  $renamed = $s.Value -replace '\bnamespace\s+([A-Za-z0-9_.]+)', ('namespace Ps51Check' + $i + '.$1')
  try { Add-Type -TypeDefinition $renamed -Language CSharp -CompilerOptions '-langversion:5' -IgnoreWarnings -ErrorAction Stop }
  catch { $problems.Add("${line}: Add-Type code is not C# 5: $(($_.Exception.Message -replace '\s+', ' '))") }
  $i++
}

if (-not ($tokens | Where-Object { $_.Kind -eq 'Generic' -and $_.Text -eq 'Set-StrictMode' })) { $problems.Add('0: no Set-StrictMode') }
$strict = $ast.FindAll({ param($x) $x -is [System.Management.Automation.Language.CommandAst] -and $x.GetCommandName() -eq 'Set-StrictMode' }, $true)
foreach ($c in $strict) { if ($c.Extent.Text -notmatch '-Version\s+Latest') { $problems.Add("$($c.Extent.StartLineNumber): Set-StrictMode must be -Version Latest") } }

foreach ($p in $problems) { [Console]::Out.WriteLine($p) }
