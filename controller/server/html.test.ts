import { describe, expect, it } from "vitest";
import { escapeHtml } from "./html.ts";

describe("escapeHtml", () => {
  it.each([
    ["<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"],
    [`" onmouseover="x`, "&quot; onmouseover=&quot;x"],
    ["' autofocus onfocus='x", "&#39; autofocus onfocus=&#39;x"],
    ["Tom & Jerry &amp;", "Tom &amp; Jerry &amp;amp;"],
    ["CN=a\\,b,OU=Ünïcode", "CN=a\\,b,OU=Ünïcode"],
    ["tab\tnew\nline\r", "tab\tnew\nline\r"],
    ["nul\u0000bell\u0007esc\u001b", "nulbellesc"],
  ])("makes %j inert: %j", (input, expected) => {
    expect(escapeHtml(input)).toBe(expected);
  });

  it("leaves no metacharacter unescaped in any input", () => {
    const all = Array.from({ length: 128 }, (_, i) => String.fromCharCode(i)).join("");
    expect(escapeHtml(all)).not.toMatch(/[<>"']|&(?!amp;|lt;|gt;|quot;|#39;)/);
  });
});
