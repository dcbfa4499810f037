/**
 * Each policy of the pack: a passing and a failing case, run through the harness that calls the
 * policies as the policy engine does. The passing case is one realistic rendering of a release;
 * each failing case changes one thing in it and must trip exactly the policy that guards it.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { policies } from "../../policy/policies";
import { analyzeAll, HarnessResource, Violation } from "./policy-harness";

const DIGEST = "sha256:" + "a".repeat(64);
const APP = `123456789012.dkr.ecr.eu-west-1.amazonaws.com/thinlayer/app@${DIGEST}`;

type Mutable = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function container(name: string): Mutable {
    return {
        name,
        image: APP,
        readinessProbe: { httpGet: { path: "/healthz", port: 8000 } },
        resources: { requests: { cpu: "250m", memory: "256Mi" }, limits: { cpu: "1", memory: "512Mi" } },
        securityContext: { runAsNonRoot: true, runAsUser: 10001, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false },
    };
}

function deployment(name: string, component: string): Mutable {
    return {
        apiVersion: "apps/v1",
        kind: "Deployment",
        metadata: { name, namespace: "emr-uat" },
        spec: {
            replicas: 2,
            selector: { matchLabels: { "app.kubernetes.io/name": "thinlayer", "app.kubernetes.io/component": component } },
            strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
            template: {
                metadata: { labels: { "app.kubernetes.io/name": "thinlayer", "app.kubernetes.io/component": component } },
                spec: { securityContext: { runAsNonRoot: true }, containers: [container(component)] },
            },
        },
    };
}

/** A release as the program renders it, in the shape the engine passes (type, name, input props). */
function release(): HarnessResource[] {
    const lifecycle = JSON.stringify({
        rules: [
            {
                rulePriority: 1,
                selection: { tagStatus: "untagged", countType: "sinceImagePushed", countUnit: "days", countNumber: 1 },
                action: { type: "expire" },
            },
            {
                rulePriority: 2,
                selection: { tagStatus: "tagged", tagPrefixList: ["app-"], countType: "imageCountMoreThan", countNumber: 50 },
                action: { type: "expire" },
            },
            {
                rulePriority: 3,
                selection: { tagStatus: "tagged", tagPrefixList: ["deps-"], countType: "imageCountMoreThan", countNumber: 10 },
                action: { type: "expire" },
            },
        ],
    });
    const web = deployment("web", "web");
    return [
        {
            type: "aws:ecr/repository:Repository",
            name: "app-repository",
            urn: "urn:repo:app",
            parent: "urn:comp:app",
            props: { name: "thinlayer/app", imageTagMutability: "IMMUTABLE" },
        },
        {
            type: "aws:ecr/lifecyclePolicy:LifecyclePolicy",
            name: "app-lifecycle",
            parent: "urn:comp:app",
            props: { repository: "thinlayer/app", policy: lifecycle },
        },
        { type: "kubernetes:apps/v1:Deployment", name: "web", urn: "urn:deploy:web", props: web },
        { type: "kubernetes:apps/v1:Deployment", name: "worker-celery", urn: "urn:deploy:celery", props: deployment("worker-celery", "celery") },
        {
            type: "kubernetes:core/v1:Service",
            name: "web",
            props: {
                apiVersion: "v1",
                kind: "Service",
                metadata: { name: "web" },
                spec: { selector: web.spec.selector.matchLabels, ports: [{ port: 80, targetPort: 8000 }] },
            },
        },
        {
            type: "kubernetes:batch/v1:Job",
            name: "migrate",
            props: {
                apiVersion: "batch/v1",
                kind: "Job",
                metadata: { name: "migrate-0123456789ab" },
                spec: {
                    backoffLimit: 1,
                    activeDeadlineSeconds: 600,
                    template: { spec: { restartPolicy: "Never", containers: [{ ...container("migrate"), readinessProbe: undefined }] } },
                },
            },
        },
    ];
}

const summary = (vs: Violation[]) => vs.map((v) => `${v.policy} [${v.enforcementLevel}]: ${v.message}`).join("\n");

/** Applies a change to one resource of a fresh release and returns the violations. */
async function violationsAfter(name: string, type: string, change: (props: Mutable) => void): Promise<Violation[]> {
    const rs = release();
    const r = rs.find((x) => x.name === name && x.type === type);
    assert.ok(r, `no ${type} ${name} in the fixture`);
    change(r.props as Mutable);
    return analyzeAll(policies, rs);
}

async function expectOnly(policy: string, level: "mandatory" | "advisory", vs: Violation[], message: RegExp) {
    assert.ok(vs.length > 0, `expected a ${policy} violation, got none`);
    assert.deepEqual([...new Set(vs.map((v) => v.policy))], [policy], summary(vs));
    for (const v of vs) assert.equal(v.enforcementLevel, level);
    assert.match(vs[0].message, message);
}

test("a well-formed release passes every policy", async () => {
    const vs = await analyzeAll(policies, release());
    assert.deepEqual(vs, [], summary(vs));
});

test("the pack has a unique name per policy, and mandatory/advisory as documented", () => {
    const levels = Object.fromEntries(policies.map((p) => [p.name, p.enforcementLevel]));
    assert.equal(Object.keys(levels).length, policies.length);
    assert.deepEqual(levels, {
        "workload-image-by-digest": "mandatory",
        "ecr-immutable-tags": "mandatory",
        "ecr-lifecycle-keeps-releases": "mandatory",
        "ecr-repository-has-lifecycle": "mandatory",
        "web-readiness-probe": "mandatory",
        "worker-readiness-probe": "advisory",
        "deployment-requests-limits": "mandatory",
        "deployment-non-root": "mandatory",
        "deployment-cpu-limit": "advisory",
        "web-zero-unavailable": "mandatory",
        "job-bounded": "mandatory",
        "migration-gate": "mandatory",
        "migration-gate-exported": "advisory",
    });
});

test("workload-image-by-digest: a tag (or :latest) in a Deployment or the migration Job fails", async () => {
    await expectOnly(
        "workload-image-by-digest",
        "mandatory",
        await violationsAfter("web", "kubernetes:apps/v1:Deployment", (p) => {
            p.spec.template.spec.containers[0].image = "thinlayer/app:latest";
        }),
        /Deployment emr-uat\/web: container "web" image "thinlayer\/app:latest" is not pinned by digest/,
    );
    await expectOnly(
        "workload-image-by-digest",
        "mandatory",
        await violationsAfter("migrate", "kubernetes:batch/v1:Job", (p) => {
            p.spec.template.spec.containers[0].image = "thinlayer/app:app-0123456789ab";
        }),
        /Job migrate-0123456789ab: container "migrate" image/,
    );
    await expectOnly(
        "workload-image-by-digest",
        "mandatory",
        await violationsAfter("worker-celery", "kubernetes:apps/v1:Deployment", (p) => {
            p.spec.template.spec.initContainers = [{ ...container("init"), image: `thinlayer/app@sha256:${"a".repeat(63)}` }];
        }),
        /container "init"/,
    );
});

test("ecr-immutable-tags: a MUTABLE (or unset) repository fails", async () => {
    await expectOnly(
        "ecr-immutable-tags",
        "mandatory",
        await violationsAfter("app-repository", "aws:ecr/repository:Repository", (p) => {
            p.imageTagMutability = "MUTABLE";
        }),
        /ECR repository "thinlayer\/app": imageTagMutability "MUTABLE"; expected "IMMUTABLE"/,
    );
    await expectOnly(
        "ecr-immutable-tags",
        "mandatory",
        await violationsAfter("app-repository", "aws:ecr/repository:Repository", (p) => {
            delete p.imageTagMutability;
        }),
        /unset \(MUTABLE\)/,
    );
});

test("ecr-lifecycle-keeps-releases: too few tagged images kept, or tagged images expired by age, fails", async () => {
    const edit = (f: (rules: Mutable[]) => void) => (p: Mutable) => {
        const doc = JSON.parse(p.policy as string);
        f(doc.rules);
        p.policy = JSON.stringify(doc);
    };
    await expectOnly(
        "ecr-lifecycle-keeps-releases",
        "mandatory",
        await violationsAfter(
            "app-lifecycle",
            "aws:ecr/lifecyclePolicy:LifecyclePolicy",
            edit((rules) => {
                rules[2].selection.countNumber = 3;
            }),
        ),
        /rule 3 \(tagStatus tagged, prefixes deps-\) keeps only 3 tagged images; expected at least 10/,
    );
    await expectOnly(
        "ecr-lifecycle-keeps-releases",
        "mandatory",
        await violationsAfter(
            "app-lifecycle",
            "aws:ecr/lifecyclePolicy:LifecyclePolicy",
            edit((rules) => {
                rules[1].selection = { tagStatus: "any", countType: "sinceImagePushed", countUnit: "days", countNumber: 30 };
            }),
        ),
        /expires tagged images by sinceImagePushed/,
    );
    // The minimum is policy config, as a pack config file would set it.
    const rs = release();
    const cfg = { "ecr-lifecycle-keeps-releases": { minTaggedImages: 20 } };
    const vs = await analyzeAll(policies, rs, cfg);
    await expectOnly("ecr-lifecycle-keeps-releases", "mandatory", vs, /keeps only 10 tagged images; expected at least 20/);
});

test("ecr-repository-has-lifecycle: a repository without a lifecycle policy fails (stack policy)", async () => {
    const rs = release().filter((r) => r.type !== "aws:ecr/lifecyclePolicy:LifecyclePolicy");
    const vs = await analyzeAll(policies, rs);
    await expectOnly("ecr-repository-has-lifecycle", "mandatory", vs, /ECR repository "thinlayer\/app" has no lifecycle policy/);
    assert.equal(vs[0].urn, "urn:repo:app");
});

test("readiness probes: mandatory on the Deployment behind the Service, advisory on a worker", async () => {
    await expectOnly(
        "web-readiness-probe",
        "mandatory",
        await violationsAfter("web", "kubernetes:apps/v1:Deployment", (p) => {
            delete p.spec.template.spec.containers[0].readinessProbe;
        }),
        /Deployment emr-uat\/web: container "web" has no readinessProbe/,
    );
    await expectOnly(
        "worker-readiness-probe",
        "advisory",
        await violationsAfter("worker-celery", "kubernetes:apps/v1:Deployment", (p) => {
            delete p.spec.template.spec.containers[0].readinessProbe;
        }),
        /Deployment emr-uat\/worker-celery: container "celery" has no readinessProbe/,
    );
});

test("deployment-requests-limits: a missing request or memory limit fails; a missing CPU limit is only advisory", async () => {
    await expectOnly(
        "deployment-requests-limits",
        "mandatory",
        await violationsAfter("web", "kubernetes:apps/v1:Deployment", (p) => {
            const r = p.spec.template.spec.containers[0].resources;
            delete r.requests.cpu;
            delete r.limits.memory;
        }),
        /container "web" lacks resources requests\.cpu, limits\.memory/,
    );
    await expectOnly(
        "deployment-cpu-limit",
        "advisory",
        await violationsAfter("web", "kubernetes:apps/v1:Deployment", (p) => {
            delete p.spec.template.spec.containers[0].resources.limits.cpu;
        }),
        /container "web" has no limits\.cpu/,
    );
});

test("deployment-non-root: runAsNonRoot false or absent, or runAsUser 0, fails; the pod-level setting counts", async () => {
    await expectOnly(
        "deployment-non-root",
        "mandatory",
        await violationsAfter("web", "kubernetes:apps/v1:Deployment", (p) => {
            p.spec.template.spec.containers[0].securityContext.runAsNonRoot = false;
        }),
        /container "web" may run as root \(runAsNonRoot=false, runAsUser=10001\)/,
    );
    await expectOnly(
        "deployment-non-root",
        "mandatory",
        await violationsAfter("web", "kubernetes:apps/v1:Deployment", (p) => {
            p.spec.template.spec.containers[0].securityContext.runAsUser = 0;
        }),
        /runAsUser=0/,
    );
    // Pod-level runAsNonRoot alone is enough ...
    const ok = await violationsAfter("web", "kubernetes:apps/v1:Deployment", (p) => {
        delete p.spec.template.spec.containers[0].securityContext.runAsNonRoot;
    });
    assert.deepEqual(ok, [], summary(ok));
    // ... and without it (and without the container's) the container may run as root.
    await expectOnly(
        "deployment-non-root",
        "mandatory",
        await violationsAfter("web", "kubernetes:apps/v1:Deployment", (p) => {
            delete p.spec.template.spec.containers[0].securityContext.runAsNonRoot;
            delete p.spec.template.spec.securityContext;
        }),
        /runAsNonRoot=null/,
    );
});

test("web-zero-unavailable: the Deployment behind the Service must not drop ready pods; workers may", async () => {
    await expectOnly(
        "web-zero-unavailable",
        "mandatory",
        await violationsAfter("web", "kubernetes:apps/v1:Deployment", (p) => {
            p.spec.strategy.rollingUpdate.maxUnavailable = "25%";
        }),
        /Deployment emr-uat\/web: serves traffic with maxUnavailable "25%"; expected 0/,
    );
    await expectOnly(
        "web-zero-unavailable",
        "mandatory",
        await violationsAfter("web", "kubernetes:apps/v1:Deployment", (p) => {
            delete p.spec.strategy;
        }),
        /25% \(Kubernetes default\)/,
    );
    await expectOnly(
        "web-zero-unavailable",
        "mandatory",
        await violationsAfter("web", "kubernetes:apps/v1:Deployment", (p) => {
            p.spec.strategy = { type: "Recreate" };
        }),
        /uses strategy "Recreate"/,
    );
    await expectOnly(
        "web-zero-unavailable",
        "mandatory",
        await violationsAfter("web", "kubernetes:apps/v1:Deployment", (p) => {
            p.spec.strategy.rollingUpdate.maxSurge = 0;
        }),
        /maxSurge 0 with maxUnavailable 0 cannot roll out/,
    );
    const worker = await violationsAfter("worker-celery", "kubernetes:apps/v1:Deployment", (p) => {
        p.spec.strategy = { type: "Recreate" };
    });
    assert.deepEqual(worker, [], "a worker no Service selects may use any strategy");
});

test("job-bounded: the migration Job needs backoffLimit and activeDeadlineSeconds within the configured limits", async () => {
    await expectOnly(
        "job-bounded",
        "mandatory",
        await violationsAfter("migrate", "kubernetes:batch/v1:Job", (p) => {
            delete p.spec.activeDeadlineSeconds;
        }),
        /Job migrate-0123456789ab: activeDeadlineSeconds "unset \(runs forever\)"; expected an integer from 1 to 3600/,
    );
    await expectOnly(
        "job-bounded",
        "mandatory",
        await violationsAfter("migrate", "kubernetes:batch/v1:Job", (p) => {
            delete p.spec.backoffLimit;
        }),
        /backoffLimit "unset \(Kubernetes default 6\)"; expected an explicit integer from 0 to 3/,
    );
    const rs = release();
    const vs = await analyzeAll(policies, rs, { "job-bounded": { maxActiveDeadlineSeconds: 300 } });
    await expectOnly("job-bounded", "mandatory", vs, /activeDeadlineSeconds 600; expected an integer from 1 to 300/);
});

test("a policy disabled by pack config does not run", async () => {
    const rs = release();
    (rs.find((r) => r.name === "app-repository")!.props as Mutable).imageTagMutability = "MUTABLE";
    assert.equal((await analyzeAll(policies, rs)).length, 1);
    assert.deepEqual(await analyzeAll(policies, rs, { "ecr-immutable-tags": { enforcementLevel: "disabled" } }), []);
});

test("the policy table in docs/operations.md lists exactly the pack's policies, with their enforcement levels", () => {
    const doc = fs.readFileSync(path.join(__dirname, "../../docs/operations.md"), "utf8");
    const section = /<!-- policy-table -->([\s\S]*?)<!-- \/policy-table -->/.exec(doc)?.[1] ?? "";
    const rows = [...section.matchAll(/^\| `([a-z-]+)` \| (mandatory|advisory) \|/gm)].map((m) => [m[1], m[2]]);
    assert.deepEqual(
        rows,
        policies.map((p) => [p.name, p.enforcementLevel]),
    );
});
