/**
 * Every Kubernetes object the program renders, for every stack, validated against the Kubernetes
 * OpenAPI schema (kubernetes-models' generated validators), plus the properties the release must
 * have that a schema cannot express.
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- resource inputs the mocked engine records are untyped JSON */
import { test } from "node:test";
import assert from "node:assert/strict";
import { listStacks } from "../../lib/config";
import { copyExampleApp, evaluateProgram, PROJECT_DIR, unwrapSecrets, type RecordedResource } from "../helpers/diff";

interface Model {
    validate(): void;
}
type ModelClass = new (data: unknown) => Model;

/** The kubernetes-models class for a Pulumi Kubernetes type token, e.g. kubernetes:apps/v1:Deployment. */
function modelClass(type: string): ModelClass {
    const [, groupVersion, kind] = type.split(":");
    const [group, version] = groupVersion.split("/");
    const modulePath = group === "core" ? `kubernetes-models/${version}` : `kubernetes-models/${group}/${version}`;
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const mod = require(modulePath) as Record<string, ModelClass>;
    assert.ok(mod[kind], `kubernetes-models has no ${kind} in ${modulePath}`);
    return mod[kind];
}

function kubernetesObjects(resources: RecordedResource[]): RecordedResource[] {
    return resources.filter((r) => r.custom && r.type.startsWith("kubernetes:"));
}

for (const stack of listStacks(PROJECT_DIR)) {
    void test(`stack ${stack}: every rendered Kubernetes object passes the OpenAPI schema`, async () => {
        const app = copyExampleApp();
        try {
            const { resources } = await evaluateProgram({ stack, config: { appDir: app.dir }, secrets: { secretSettings: ["DJANGO_SECRET_KEY=x"] } });
            const objects = kubernetesObjects(resources);
            assert.ok(
                objects.length >= 7,
                `expected namespace, ConfigMap, Secret, Job, Deployment(s), Service, PDB; got ${objects.map((o) => o.type).join(", ")}`,
            );
            for (const o of objects) {
                const data = unwrapSecrets(o.inputs) as Record<string, unknown>;
                assert.doesNotThrow(() => new (modelClass(o.type))(data).validate(), `${o.type} ${o.name}`);
            }
            // The validator bites: a wrong type in the same object fails.
            const web = objects.find((o) => o.name === "app-web");
            assert.ok(web);
            const broken = structuredClone(unwrapSecrets(web.inputs)) as any;
            broken.spec.replicas = "three";
            assert.throws(() => new (modelClass(web.type))(broken).validate(), /replicas/);

            // What a schema cannot say: selectors carry no version or image; images by digest;
            // zero-unavailable rollouts; probes, limits, non-root read-only containers; no skipAwait.
            for (const d of objects.filter((o) => o.type === "kubernetes:apps/v1:Deployment")) {
                const spec = (d.inputs as any).spec;
                assert.deepEqual(Object.keys(spec.selector.matchLabels).sort(), ["app.kubernetes.io/component", "app.kubernetes.io/name"], d.name);
                assert.deepEqual(spec.strategy, { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } });
                const c = spec.template.spec.containers[0];
                assert.match(c.image, /^[^@]+@sha256:[a-f0-9]{64}$/);
                assert.ok(c.resources.requests.cpu && c.resources.limits.memory);
                assert.equal(c.securityContext.readOnlyRootFilesystem, true);
                assert.equal(c.securityContext.runAsNonRoot, true);
                assert.deepEqual(c.securityContext.capabilities.drop, ["ALL"]);
                assert.ok(c.volumeMounts.some((v: any) => v.mountPath === "/tmp"));
                assert.equal((d.inputs as any).metadata.annotations?.["pulumi.com/skipAwait"], undefined);
                assert.ok(
                    d.dependsOn.some((x) => x.startsWith("kubernetes:batch/v1:Job::")),
                    `${d.name} waits for the migration Job`,
                );
                if (d.name === "app-web") {
                    for (const p of ["readinessProbe", "livenessProbe", "startupProbe"]) assert.ok(c[p], p);
                    assert.equal(c.readinessProbe.httpGet.path, "/healthz");
                    assert.deepEqual(c.lifecycle.preStop.exec.command, ["sleep", "10"]);
                    assert.ok(spec.template.spec.terminationGracePeriodSeconds > 10);
                }
            }
        } finally {
            app.cleanup();
        }
    });
}
