// The exposition text of a recorder, whole, as a scrape would receive it (the recorder hands it
// out in pieces: metricsChunks).
import type { MetricsRecorder } from "../../controller/metrics/index.ts";

/** Every piece of one scrape, joined. */
export async function scrapeText(metrics: MetricsRecorder): Promise<string> {
  let text = "";
  for await (const chunk of metrics.metricsChunks()) text += chunk;
  return text;
}
