/**
 * deploy/kubernetes/: every manifest validated against the Kubernetes (and prometheus-operator)
 * OpenAPI schemas of the kubernetes-models packages, the Pod Security "restricted" profile, the
 * memory sizing against the controller benchmark, the network policy, and the PrometheusRule
 * carrying exactly the rules of deploy/prometheus/rules.yaml.
 */
import { execFile } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { PrometheusRule, ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";
import type { IPrometheusRule, IServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";
import { Deployment } from "kubernetes-models/apps/v1";
import type { IDeployment } from "kubernetes-models/apps/v1";
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1";
import type { IPodDisruptionBudget } from "kubernetes-models/policy/v1";
import type { INetworkPolicy } from "kubernetes-models/networking.k8s.io/v1";
import { ConfigMap, Namespace, Service, ServiceAccount } from "kubernetes-models/v1";
import type { IConfigMap, INamespace, IService, IServiceAccount } from "kubernetes-models/v1";
import { describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";

const exec = promisify(execFile);
const root = join(import.meta.dirname, "..");
const folder = join(root, "deploy/kubernetes");

interface Manifest {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace?: string };
}

const models: Record<string, new (data: never) => { validate(): void }> = {
  "v1/Namespace": Namespace,
  "v1/ServiceAccount": ServiceAccount,
  "v1/ConfigMap": ConfigMap,
  "v1/Service": Service,
  "apps/v1/Deployment": Deployment,
  "networking.k8s.io/v1/NetworkPolicy": NetworkPolicy,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget,
  "monitoring.coreos.com/v1/ServiceMonitor": ServiceMonitor,
  "monitoring.coreos.com/v1/PrometheusRule": PrometheusRule,
};

const files = readdirSync(folder).filter((f) => f.endsWith(".yaml"));
const manifests: Array<{ file: string; doc: Manifest }> = files.flatMap((file) =>
  parseAllDocuments(readFileSync(join(folder, file), "utf8")).map((d) => ({ file, doc: d.toJS() as Manifest })),
);

/** The one manifest of this kind, typed as its model (its schema is checked by the first test). */
function one<T>(kind: string): T {
  const found = manifests.filter((m) => m.doc.kind === kind);
  expect(found, kind).toHaveLength(1);
  return found[0]!.doc as T;
}
const deployment = () => one<IDeployment>("Deployment");
const pod = () => deployment().spec!.template.spec!;
const container = () => pod().containers[0]!;

describe("the Kubernetes manifests", () => {
  it("are each valid against the schema of their apiVersion and kind", () => {
    expect(manifests.length).toBeGreaterThanOrEqual(8);
    for (const { file, doc } of manifests) {
      const Model = models[`${doc.apiVersion}/${doc.kind}`];
      expect(Model, `${file}: ${doc.apiVersion} ${doc.kind} has no schema here`).toBeDefined();
      expect(() => new Model!(doc as never).validate(), `${file}: ${doc.kind}/${doc.metadata.name}`).not.toThrow();
      if (doc.kind !== "Namespace") expect(doc.metadata.namespace, `${file}: ${doc.kind}`).toBe("gmsa-gitops");
    }
  });

  it('meet Pod Security "restricted", and the namespace enforces it', () => {
    expect(one<INamespace>("Namespace").metadata?.labels).toMatchObject({
      "pod-security.kubernetes.io/enforce": "restricted",
      "pod-security.kubernetes.io/warn": "restricted",
    });
    const spec = pod();
    expect(spec.automountServiceAccountToken).toBe(false);
    expect(one<IServiceAccount>("ServiceAccount").automountServiceAccountToken).toBe(false);
    expect(spec.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } });
    expect(spec.hostNetwork ?? false).toBe(false);
    for (const volume of spec.volumes ?? []) expect(volume.hostPath, volume.name).toBeUndefined();
    for (const c of [...spec.containers, ...(spec.initContainers ?? [])]) {
      expect(c.securityContext, c.name).toMatchObject({
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ["ALL"] },
      });
      expect(c.securityContext?.capabilities?.add ?? []).toEqual([]);
      expect((c.ports ?? []).every((p) => p.hostPort === undefined)).toBe(true);
    }
  });

  it("size memory from the controller benchmark at 5,000 resources", () => {
    const benchmarks = readFileSync(join(root, "docs/benchmarks.md"), "utf8");
    // The latest 5,000-resource run: the highest RSS any of its steady states reached (the
    // full read every cycle, which the first cycle and each full resync also do).
    const section = benchmarks.slice(benchmarks.indexOf("## At 5,000 resources"));
    const row = /^\| RSS min \/ median \/ max .*$/m.exec(section)?.[0] ?? "";
    const maxima = [...row.matchAll(/(\d+) \/ (\d+) \/ (\d+) MiB/g)].map((m) => Number(m[3]));
    expect(maxima.length).toBeGreaterThanOrEqual(2);
    const peakMiB = Math.max(...maxima);
    const mebibytes = (q: unknown): number => {
      const text = String(q);
      const m = /^(\d+)(Mi|Gi)$/.exec(text);
      if (!m) throw new Error(`unexpected quantity ${text}`);
      return Number(m[1]) * (m[2] === "Gi" ? 1024 : 1);
    };
    const { requests = {}, limits = {} } = container().resources ?? {};
    // The request holds the measured steady state; the limit leaves room for git, ssh and a
    // full re-read on top of it, and V8's heap cap keeps the process under the limit.
    expect(mebibytes(requests["memory"])).toBeGreaterThanOrEqual(peakMiB);
    expect(mebibytes(requests["memory"])).toBeLessThanOrEqual(peakMiB * 1.5);
    expect(mebibytes(limits["memory"])).toBeGreaterThanOrEqual(peakMiB * 1.5);
    const nodeOptions = container().env?.find((e) => e.name === "NODE_OPTIONS")?.value ?? "";
    const heap = /--max-old-space-size=(\d+)/.exec(nodeOptions);
    expect(heap).not.toBeNull();
    expect(Number(heap![1])).toBeLessThan(mebibytes(limits["memory"]) - peakMiB / 2);
  });

  it("run two replicas with leader election, and keep one through voluntary disruptions", () => {
    expect(deployment().spec!.replicas).toBe(2);
    // Both write only under the lease; a rolling update never stops both at once.
    expect(deployment().spec!.strategy?.type).toBe("RollingUpdate");
    const config = parse(one<IConfigMap>("ConfigMap").data!["config.yaml"]!) as { leader?: { enabled?: boolean } };
    expect(config.leader?.enabled).toBe(true);
    const pdb = one<IPodDisruptionBudget>("PodDisruptionBudget");
    expect(pdb.spec!.minAvailable).toBe(1);
    expect(pdb.spec!.selector!.matchLabels).toEqual(deployment().spec!.selector.matchLabels);
  });

  it("let in only the metrics scrape and let out only DNS, LDAP(S), SSH and HTTPS", () => {
    const policy = one<INetworkPolicy>("NetworkPolicy").spec!;
    expect(policy.podSelector?.matchLabels).toEqual(deployment().spec!.selector.matchLabels);
    expect(policy.policyTypes).toEqual(["Ingress", "Egress"]);
    const ingressPorts = (policy.ingress ?? []).flatMap((r) => (r.ports ?? []).map((p) => p.port));
    expect(new Set(ingressPorts)).toEqual(new Set([container().ports![0]!.name]));
    const egressPorts = (policy.egress ?? []).flatMap((r) => (r.ports ?? []).map((p) => p.port));
    expect(new Set(egressPorts)).toEqual(new Set([53, 389, 636, 22, 443]));
  });

  it("let prometheus-operator scrape the Service under the job name the alerts match", () => {
    const service = one<IService>("Service");
    const monitor = one<IServiceMonitor>("ServiceMonitor").spec;
    expect(service.metadata?.labels).toMatchObject(monitor.selector.matchLabels ?? {});
    expect(service.metadata?.name).toBe("gmsa-gitops"); // the job label: rules.yaml matches job="gmsa-gitops"
    expect(monitor.jobLabel).toBeUndefined();
    expect(service.spec?.ports?.map((p) => p.name)).toContain(monitor.endpoints?.[0]?.port);
    const config = parse(one<IConfigMap>("ConfigMap").data?.["config.yaml"] ?? "") as { server: { address: string } };
    const port = Number(config.server.address.split(":").at(-1));
    expect(container().ports?.[0]?.containerPort).toBe(port);
  });

  it("carry in the PrometheusRule exactly the groups of deploy/prometheus/rules.yaml", async () => {
    const rules = parse(readFileSync(join(root, "deploy/prometheus/rules.yaml"), "utf8")) as { groups: unknown[] };
    expect(one<IPrometheusRule>("PrometheusRule").spec.groups).toEqual(rules.groups);
    const { stdout } = await exec(process.execPath, [join(root, "scripts/gen-prometheus-rule.ts"), "--check"]);
    expect(stdout).toContain("up to date");
  });
});
