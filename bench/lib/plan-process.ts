// A fresh process that runs `gmsa-gitops plan` once, through the CLI's own main(), and reports
// its memory as one JSON line on stdout: the "plan process" whose peak memory the directory
// bench reports. Its own output (the rendered plan) is counted, not printed.
//
//   plan-process.ts --idle                       load the CLI and exit: Node's fixed cost
//   plan-process.ts -- plan --repo DIR ...       run the CLI with these arguments
import { main } from "../../controller/cli/main.ts";

/** What the parent reads back. */
export interface PlanProcessReport {
  readonly exitCode: number;
  readonly wallMs: number;
  /** Peak resident set size of this process (resourceUsage().maxRSS), bytes. */
  readonly maxRssBytes: number;
  /** Highest V8 heapUsed seen by sampling every 5 ms, bytes. */
  readonly peakHeapUsedBytes: number;
  readonly stdoutBytes: number;
  readonly stderr: string;
}

const argv = process.argv.slice(2);
let peakHeap = process.memoryUsage().heapUsed;
const sampler = setInterval(() => {
  peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
}, 5);
const started = performance.now();
let exitCode = 0;
let stdoutBytes = 0;
let stderr = "";
if (argv[0] !== "--idle") {
  const args = argv[0] === "--" ? argv.slice(1) : argv;
  exitCode = await main(args, {
    stdout: (text) => void (stdoutBytes += Buffer.byteLength(text)),
    stderr: (text) => void (stderr += text),
  });
}
clearInterval(sampler);
peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
const report: PlanProcessReport = {
  exitCode,
  wallMs: performance.now() - started,
  maxRssBytes: process.resourceUsage().maxRSS * 1024,
  peakHeapUsedBytes: peakHeap,
  stdoutBytes,
  stderr,
};
process.stdout.write(`${JSON.stringify(report)}\n`);
