/**
 * The local cluster the e2e tests deploy to: a real control plane (etcd, kube-apiserver,
 * kube-controller-manager, kube-scheduler) with kwok simulating the pods. Checks what the deploy
 * tests rely on: a Deployment rolls out and rolls a new image out with maxUnavailable 0, a Job
 * completes, a Job marked to fail (by label, or by name with failPodsOfJob) fails with its exit code,
 * the same Job completes once the failing stage is removed, and stop() frees every port.
 */
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as net from "node:net";
import { FAIL_EXIT_CODE_ANNOTATION, FAIL_LABEL, needClusterTools, startCluster, StartedCluster } from "../helpers/cluster";

const NS = "thinlayer-e2e";

function deployment(image: string) {
    return {
        apiVersion: "apps/v1",
        kind: "Deployment",
        metadata: { name: "web", namespace: NS },
        spec: {
            replicas: 2,
            selector: { matchLabels: { app: "web" } },
            strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
            template: {
                metadata: { labels: { app: "web" } },
                spec: { containers: [{ name: "web", image }] },
            },
        },
    };
}

function job(name: string, fail?: { exitCode: number }) {
    return {
        apiVersion: "batch/v1",
        kind: "Job",
        metadata: { name, namespace: NS },
        spec: {
            backoffLimit: 0,
            template: {
                metadata: fail ? { labels: { [FAIL_LABEL]: "true" }, annotations: { [FAIL_EXIT_CODE_ANNOTATION]: String(fail.exitCode) } } : {},
                spec: { restartPolicy: "Never", containers: [{ name: "migrate", image: "registry.invalid/app@sha256:" + "a".repeat(64) }] },
            },
        },
    };
}

async function getJson<T>(c: StartedCluster, ...args: string[]): Promise<T> {
    return JSON.parse(await c.kubectl(["get", "-o", "json", ...args])) as T;
}

function portIsFree(port: number): Promise<boolean> {
    return new Promise((resolve) => {
        const s = net.createServer();
        s.once("error", () => resolve(false));
        s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
    });
}

type Pod = {
    metadata: { name: string };
    spec: { containers: { image: string }[] };
    status: { phase: string; containerStatuses?: { state: { terminated?: { exitCode: number } } }[] };
};
type Cond = { type: string; status: string };

test("local cluster: Deployment rollouts, Job complete and failed, ports released on stop", { timeout: 120_000 }, async (t) => {
    const tools = needClusterTools(t);
    if (!tools) return;
    const started = Date.now();
    const c = await startCluster(tools, { context: "e2e" });
    t.diagnostic(`cluster up in ${Date.now() - started} ms at ${c.server}`);
    const ports = Object.values(c.ports);
    try {
        const kc = JSON.parse(fs.readFileSync(c.kubeconfigPath, "utf8")) as { "current-context": string };
        assert.equal(kc["current-context"], "e2e");
        assert.equal(c.context, "e2e");
        const version = JSON.parse(await c.kubectl(["version", "-o", "json"])) as { serverVersion: { gitVersion: string } };
        assert.match(version.serverVersion.gitVersion, /^v1\.\d+\.\d+$/, "the apiserver reports a real version (ldflags set by kube.sh)");

        await c.kubectl(["apply", "-f", "-"], { input: JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name: NS } }) });
        // The namespace's default ServiceAccount must exist before pods are admitted.
        await c.kubectl(["wait", "--for=create", "serviceaccount/default", "-n", NS, "--timeout=30s"]);

        // --- Deployment: first rollout, then a new image with maxUnavailable 0
        await c.kubectl(["apply", "-f", "-"], { input: JSON.stringify(deployment("registry.invalid/web:v1")) });
        await c.kubectl(["rollout", "status", "deployment/web", "-n", NS, "--timeout=30s"]);
        const d1 = await getJson<{ status: { availableReplicas?: number; readyReplicas?: number } }>(c, "deployment/web", "-n", NS);
        assert.equal(d1.status.availableReplicas, 2);
        assert.equal(d1.status.readyReplicas, 2);

        await c.kubectl(["apply", "-f", "-"], { input: JSON.stringify(deployment("registry.invalid/web:v2")) });
        await c.kubectl(["rollout", "status", "deployment/web", "-n", NS, "--timeout=30s"]);
        const d2 = await getJson<{
            metadata: { generation: number };
            status: { availableReplicas?: number; updatedReplicas?: number; observedGeneration?: number };
        }>(c, "deployment/web", "-n", NS);
        assert.equal(d2.status.observedGeneration, d2.metadata.generation);
        assert.equal(d2.status.updatedReplicas, 2);
        assert.equal(d2.status.availableReplicas, 2);
        // The old pods are gone (kwok deletes terminating pods at once), not lingering for a grace period.
        let pods: Pod[] = [];
        for (let i = 0; i < 100; i++) {
            pods = (await getJson<{ items: Pod[] }>(c, "pods", "-n", NS, "-l", "app=web")).items;
            if (pods.length === 2) break;
            await new Promise((r) => setTimeout(r, 100));
        }
        assert.deepEqual(
            pods.map((p) => [p.spec.containers[0].image, p.status.phase]),
            [
                ["registry.invalid/web:v2", "Running"],
                ["registry.invalid/web:v2", "Running"],
            ],
        );
        const rs = (
            await getJson<{ items: { spec: { replicas: number; template: { spec: { containers: { image: string }[] } } } }[] }>(c, "replicasets", "-n", NS)
        ).items;
        assert.deepEqual(rs.map((r) => [r.spec.template.spec.containers[0].image, r.spec.replicas]).sort(), [
            ["registry.invalid/web:v1", 0],
            ["registry.invalid/web:v2", 2],
        ]);

        // --- Jobs: one completes, one marked to fail fails with its exit code
        await c.kubectl(["apply", "-f", "-"], {
            input: JSON.stringify({ apiVersion: "v1", kind: "List", items: [job("migrate-ok"), job("migrate-bad", { exitCode: 3 })] }),
        });
        await c.kubectl(["wait", "--for=condition=Complete", "job/migrate-ok", "-n", NS, "--timeout=30s"]);
        await c.kubectl(["wait", "--for=condition=Failed", "job/migrate-bad", "-n", NS, "--timeout=30s"]);
        const ok = await getJson<{ status: { succeeded?: number; failed?: number; conditions: Cond[] } }>(c, "job/migrate-ok", "-n", NS);
        assert.equal(ok.status.succeeded, 1);
        assert.equal(ok.status.failed, undefined);
        assert.ok(!ok.status.conditions.some((x) => x.type === "Failed" && x.status === "True"));
        const bad = await getJson<{ status: { succeeded?: number; failed?: number; conditions: Cond[] } }>(c, "job/migrate-bad", "-n", NS);
        assert.equal(bad.status.failed, 1);
        assert.equal(bad.status.succeeded, undefined);
        assert.ok(!bad.status.conditions.some((x) => x.type === "Complete" && x.status === "True"));
        const badPods = (await getJson<{ items: Pod[] }>(c, "pods", "-n", NS, "-l", "job-name=migrate-bad")).items;
        assert.equal(badPods.length, 1);
        assert.equal(badPods[0].status.phase, "Failed");
        assert.equal(badPods[0].status.containerStatuses?.[0].state.terminated?.exitCode, 3);

        // --- failPodsOfJob: a Job the test does not write (no label) fails by name, until remove()
        const stage = await c.failPodsOfJob("migrate-named", 2);
        await c.kubectl(["apply", "-f", "-"], { input: JSON.stringify(job("migrate-named")) });
        await c.kubectl(["wait", "--for=condition=Failed", "job/migrate-named", "-n", NS, "--timeout=30s"]);
        const named = (await getJson<{ items: Pod[] }>(c, "pods", "-n", NS, "-l", "job-name=migrate-named")).items;
        assert.deepEqual(
            named.map((p) => [p.status.phase, p.status.containerStatuses?.[0].state.terminated?.exitCode]),
            [["Failed", 2]],
        );
        await stage.remove();
        await c.kubectl(["delete", "job", "migrate-named", "-n", NS, "--wait=true", "--timeout=30s"]);
        await c.kubectl(["apply", "-f", "-"], { input: JSON.stringify(job("migrate-named")) });
        await c.kubectl(["wait", "--for=condition=Complete", "job/migrate-named", "-n", NS, "--timeout=30s"]);
    } finally {
        await c.stop();
    }
    assert.equal(fs.existsSync(c.kubeconfigPath), false, "stop() removes the cluster's files");
    const busy: number[] = [];
    for (const p of ports) if (!(await portIsFree(p))) busy.push(p);
    assert.deepEqual(busy, [], "every port of the cluster is free after stop()");
    t.diagnostic(`whole test ${Date.now() - started} ms`);
});
