/**
 * Release on its own under the mocked engine: the defaults it renders, children named
 * `${name}-<role>` under the component, and the Django probe host.
 */
import { before, test } from "node:test";
import assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import { installMocks, seenResource, valueOf, type SeenResource } from "../helpers/mocks";
import { djangoProbeHost, migrationResourceName, Release, settingsConfigMapName } from "../../components/release";

const MH = "c".repeat(64);
const SH = "d".repeat(64);
const IMAGE = `r.example/app@sha256:${"e".repeat(64)}`;

let seen: SeenResource[];
before(async () => {
    seen = await installMocks(pulumi);
});

void test("defaults: 2 web replicas on 8000, /healthz, no workers, 250m/256Mi..1/512Mi, 5 revisions, Job 1 retry / 600 s", async () => {
    const rel = new Release("shop", { namespace: "ns1", image: IMAGE, migrationsHash: MH, settingsHash: SH, settings: { A: "1" } });
    const web = await seenResource(seen, (r) => r.name === "shop-web");
    const spec = web.inputs.spec;
    assert.equal(spec.replicas, 2);
    assert.equal(spec.revisionHistoryLimit, 5);
    const c = spec.template.spec.containers[0];
    assert.equal(c.image, IMAGE);
    assert.deepEqual(c.ports, [{ name: "http", containerPort: 8000, protocol: "TCP" }]);
    assert.equal(c.readinessProbe.httpGet.path, "/healthz");
    assert.equal(c.readinessProbe.httpGet.httpHeaders, undefined, "no probe host: the kubelet's default");
    assert.deepEqual(c.resources, { requests: { cpu: "250m", memory: "256Mi" }, limits: { cpu: "1", memory: "512Mi" } });
    const job = await seenResource(seen, (r) => r.name === migrationResourceName("shop", MH));
    assert.equal(job.inputs.metadata.name, "shop-migrate-cccccccccccc");
    assert.equal(job.inputs.spec.backoffLimit, 1);
    assert.equal(job.inputs.spec.activeDeadlineSeconds, 600);
    assert.equal(job.inputs.spec.template.spec.restartPolicy, "Never");
    const cm = await seenResource(seen, (r) => r.name === "shop-settings");
    assert.equal(cm.inputs.metadata.name, settingsConfigMapName("shop", SH));
    assert.equal(cm.inputs.metadata.namespace, "ns1");
    assert.equal(await valueOf(rel.configMapName), "shop-settings-dddddddddddd");
    assert.deepEqual(rel.workerDeploymentNames, []);
    assert.match(await valueOf(rel.urn), /::thinlayer:kubernetes:Release::shop$/);
    await seenResource(seen, (r) => r.name === "shop-web-pdb");
    assert.ok(!seen.some((r) => r.name.startsWith("shop-worker-")));
});

void test("workers: one Deployment each, the command through sh -c exec, replicas from args", async () => {
    new Release("jobs", {
        namespace: "ns2",
        image: IMAGE,
        migrationsHash: MH,
        settingsHash: SH,
        workers: [
            { name: "celery", command: "celery -A emr worker" },
            { name: "beat", command: "celery -A emr beat" },
        ],
        workerReplicas: 3,
    });
    for (const [name, cmd] of [
        ["celery", "celery -A emr worker"],
        ["beat", "celery -A emr beat"],
    ]) {
        const d = await seenResource(seen, (r) => r.name === `jobs-worker-${name}`);
        assert.equal(d.inputs.spec.replicas, 3);
        assert.deepEqual(d.inputs.spec.template.spec.containers[0].command, ["/bin/sh", "-c", `exec ${cmd}`]);
        assert.deepEqual(d.inputs.spec.selector.matchLabels, { "app.kubernetes.io/name": "jobs", "app.kubernetes.io/component": `worker-${name}` });
    }
});

void test("bad args: a pulumi.ResourceError listing every problem", () => {
    assert.throws(
        () => new Release("bad", { namespace: "n", image: IMAGE, migrationsHash: "x", settingsHash: SH, memoryLimit: "lots" }),
        (e: unknown) => {
            assert.ok(e instanceof pulumi.ResourceError);
            assert.equal(
                (e as Error).message,
                [
                    'migrationsHash: got "x"; expected 64 lowercase hex (plan.migrations.hash). Fix: pass the plan\'s migrations hash',
                    'memoryLimit: got "lots"; expected a Kubernetes quantity such as 250m, 1, 512Mi, 1Gi. Fix: use a Kubernetes resource quantity',
                ].join("\n"),
            );
            return true;
        },
    );
});

void test("probe host from DJANGO_ALLOWED_HOSTS", () => {
    assert.equal(djangoProbeHost("emr.example.com,www.example.com"), "emr.example.com");
    assert.equal(djangoProbeHost(" .example.com"), "probe.example.com");
    assert.equal(djangoProbeHost("*"), undefined);
    assert.equal(djangoProbeHost(undefined), undefined);
    assert.equal(djangoProbeHost(""), undefined);
});
