/**
 * Workers have a readiness gate: the program's own workers never trip `worker-readiness-probe`
 * (a policy that fires on every run is noise), and a worker without any gate still does.
 *
 * The gate the program gives a worker is `minReadySeconds`: a new worker pod counts as available
 * (so the rolling update removes an old one) only after running that long without a crash. A
 * readiness probe is the other way to pass, for workloads that have a real health check.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { policies } from "../../policy/policies";
import { MIN_WORKER_READY_SECONDS, workerReadinessProblems } from "../../policy/checks";
import { WORKER_MIN_READY_SECONDS, webDeployment, workerDeployment, type PodSettings } from "../../components/workloads";
import { copyExampleApp, evaluateProgram, unwrapSecrets } from "../helpers/diff";
import { analyzeAll, type HarnessResource } from "./policy-harness";

const S: PodSettings = {
    image: `r.example/app@sha256:${"a".repeat(64)}`,
    configMapName: "cm",
    secretName: "s",
    cpuRequest: "250m",
    memoryRequest: "256Mi",
    cpuLimit: "1",
    memoryLimit: "512Mi",
    runAsUser: 10001,
};

describe("the rendered program's workers pass worker-readiness-probe", { concurrency: 2 }, () => {
    for (const stack of ["uat", "prod"]) {
        test(stack, async () => {
            const app = copyExampleApp();
            try {
                const e = await evaluateProgram({ stack, config: { appDir: app.dir }, secrets: { secretSettings: ["DJANGO_SECRET_KEY=x"] } });
                const resources: HarnessResource[] = e.resources
                    .filter((r) => r.custom)
                    .map((r) => ({
                        type: r.type,
                        name: r.name,
                        urn: `urn:${r.type}::${r.name}`,
                        props: unwrapSecrets(r.inputs) as Record<string, unknown>,
                    }));
                assert.ok(
                    resources.some((r) => r.name === "app-worker-celery"),
                    "the stack renders its celery worker",
                );
                const vs = (await analyzeAll(policies, resources)).filter((v) => v.policy === "worker-readiness-probe");
                assert.deepEqual(
                    vs.map((v) => v.message),
                    [],
                );
            } finally {
                app.cleanup();
            }
        });
    }
});

test("a worker Deployment waits WORKER_MIN_READY_SECONDS (at least the policy's minimum) before a new pod counts; the web Deployment is unchanged", () => {
    assert.ok(
        WORKER_MIN_READY_SECONDS >= MIN_WORKER_READY_SECONDS,
        `the program waits ${WORKER_MIN_READY_SECONDS} s, the policy asks for ${MIN_WORKER_READY_SECONDS}`,
    );
    const w = workerDeployment(
        {
            app: "emr",
            worker: "celery",
            name: "app-worker-celery",
            namespace: "ns",
            command: "celery -A emr worker",
            replicas: 2,
            drainSeconds: 20,
            revisionHistoryLimit: 5,
        },
        S,
    );
    const spec = (d: typeof w) => d.spec as { minReadySeconds?: number };
    assert.equal(spec(w).minReadySeconds, WORKER_MIN_READY_SECONDS);
    const web = webDeployment(
        { app: "emr", name: "app-web", namespace: "ns", replicas: 2, port: 8000, healthPath: "/healthz", drainSeconds: 10, revisionHistoryLimit: 5 },
        S,
    );
    assert.equal(spec(web).minReadySeconds, undefined, "web is gated by its HTTP readiness probe");
});

test("workerReadinessProblems: a probe or minReadySeconds passes; neither, or too short a wait, fails with the fix", () => {
    const worker = (container: Record<string, unknown>, minReadySeconds?: number) => ({
        spec: { ...(minReadySeconds !== undefined ? { minReadySeconds } : {}), template: { spec: { containers: [{ name: "celery", ...container }] } } },
    });
    assert.deepEqual(workerReadinessProblems(worker({ readinessProbe: { exec: { command: ["true"] } } })), []);
    assert.deepEqual(workerReadinessProblems(worker({}, MIN_WORKER_READY_SECONDS)), []);
    const none = workerReadinessProblems(worker({}));
    assert.equal(none.length, 1);
    assert.match(
        none[0],
        /^Deployment \(auto-named\): container "celery" has no readinessProbe and the Deployment's minReadySeconds is 0; expected a readinessProbe or minReadySeconds >= \d+/,
    );
    assert.match(none[0], /Fix: /);
    assert.equal(workerReadinessProblems(worker({}, MIN_WORKER_READY_SECONDS - 1)).length, 1);
});
