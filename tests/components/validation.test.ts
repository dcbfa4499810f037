/** The components' validators: pure functions with exact messages (input, bad value, allowed, fix). */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as path from "node:path";
import { validateImageRepositoryArgs } from "../../components/imageRepository";
import { imageTag, validateAppImageArgs, validateBaseImageArgs } from "../../components/images";
import { validateReleaseArgs } from "../../components/release";
import { validateKubernetesTargetArgs } from "../../components/cluster";
import { classifyPin, ecrImageQuery } from "../../components/releasePin";

const ROOT = path.resolve(__dirname, "..", "..");
const APP = path.join(ROOT, "examples", "django-app");
const H = "a".repeat(64);
const H2 = "b".repeat(64);

void test("ImageRepository: valid args give no problems", () => {
    assert.deepEqual(validateImageRepositoryArgs({ repositoryName: "thinlayer/app", tagPrefix: "app-" }), []);
    assert.deepEqual(validateImageRepositoryArgs({ repositoryName: "thinlayer/base", tagPrefix: "deps-", mode: "existing", keepTaggedImages: 10 }), []);
});

void test("ImageRepository: exact messages", () => {
    assert.deepEqual(validateImageRepositoryArgs({ repositoryName: "Thinlayer/App", tagPrefix: "app-", keepTaggedImages: 0 }), [
        'repositoryName: got "Thinlayer/App"; expected an ECR repository name: 2-256 lowercase letters, digits, . _ - separated by /. Fix: rename the repository, e.g. thinlayer/app',
        "keepTaggedImages: got 0; expected an integer from 1 to 10000. Fix: keep at least the releases you may roll back to",
    ]);
    assert.deepEqual(validateImageRepositoryArgs({ repositoryName: "x/app", tagPrefix: "", mode: "owned" as never }), [
        'mode: got "owned"; expected create | existing. Fix: use create in the stack that owns the repository, existing elsewhere',
        'tagPrefix: got ""; expected a non-empty tag prefix such as app- or deps-. Fix: pass the prefix the image tags start with',
    ]);
});

const baseEntry = { image: "base" as const, contextDir: APP, dockerfile: path.join(APP, "Dockerfile.base"), hash: H };
const baseArgs = { projectDir: ROOT, image: baseEntry, repositoryUrl: "r/x" };
const appEntry = { image: "app" as const, contextDir: APP, dockerfile: path.join(APP, "Dockerfile"), hash: H };

void test("BaseImage / AppImage: valid args give no problems; a whole plan entry is accepted as it is", () => {
    assert.deepEqual(validateBaseImageArgs(baseArgs), []);
    assert.deepEqual(validateAppImageArgs({ ...baseArgs, image: appEntry, baseRef: "r/b@sha256:" + H, baseHash: H2 }), []);
    const planEntry = { ...baseEntry, repository: "thinlayer/base", tag: `deps-${H.slice(0, 12)}`, files: [], totalBytes: 0, warnings: [], copyOnly: false };
    assert.deepEqual(validateBaseImageArgs({ ...baseArgs, image: planEntry }), []);
});

void test("BaseImage / AppImage: the tag is derived from the entry's hash, so the two cannot disagree", () => {
    assert.equal(imageTag("base", H), `deps-${H.slice(0, 12)}`);
    assert.equal(imageTag("app", H2), `app-${H2.slice(0, 12)}`);
});

void test("BaseImage: every problem at once: the wrong entry, a bad hash, a bad platform, a missing Dockerfile", () => {
    assert.deepEqual(validateBaseImageArgs({ ...baseArgs, image: { ...appEntry, hash: "abc", dockerfile: path.join(APP, "Nope") }, platform: "amd64" }), [
        'image.image: got "app"; expected "base" (this component ensures the base image). Fix: pass plan.base',
        'image.hash: got "abc"; expected 64 lowercase hex (the plan\'s content hash). Fix: pass plan.base from computePlan',
        `platform: got "amd64"; expected os/arch[/variant], e.g. linux/amd64 or linux/arm64. Fix: set the platform the cluster's nodes run`,
        `image.dockerfile: got ${JSON.stringify(path.join(APP, "Nope"))}; expected an existing absolute file. Fix: point it at the Dockerfile`,
    ]);
});

void test("BaseImage: keepTag must be <stack>-<tag> within the tag grammar", () => {
    const tag = `deps-${H.slice(0, 12)}`;
    assert.deepEqual(validateBaseImageArgs({ ...baseArgs, keepTag: `prod-${tag}` }), []);
    const allowed = `expected <stack>-${tag}: a tag of 1..128 characters [A-Za-z0-9_.-], not starting with . or -. Fix: pass <stack name>-<image tag>, as index.ts does`;
    for (const bad of [`-${tag}`, tag, `prod-app-${H.slice(0, 12)}`, `pr/od-${tag}`, `${"x".repeat(112)}-${tag}`]) {
        assert.deepEqual(validateBaseImageArgs({ ...baseArgs, keepTag: bad }), [`keepTag: got ${JSON.stringify(bad)}; ${allowed}`], bad);
    }
});

void test("AppImage: the app entry and a base hash are required", () => {
    assert.deepEqual(validateAppImageArgs({ ...baseArgs, baseRef: "r/b@sha256:" + H, baseHash: "nope" }), [
        'image.image: got "base"; expected "app" (this component ensures the app image). Fix: pass plan.app',
        'baseHash: got "nope"; expected 64 lowercase hex (plan.base.hash). Fix: pass the base image\'s content hash',
    ]);
});

void test("Release: valid args give no problems; exact messages otherwise", () => {
    const ok = { namespace: "ns", image: "r@sha256:" + H, migrationsHash: H, settingsHash: H2 };
    assert.deepEqual(validateReleaseArgs("app", ok), []);
    assert.deepEqual(
        validateReleaseArgs("App", { ...ok, webReplicas: -1, cpuLimit: "lots", workers: [{ name: "web", command: "x" }], migrationDeadlineSeconds: 5 }),
        [
            'name: got "App"; expected a DNS-1123 label of at most 30 characters (it prefixes every object name). Fix: rename the Release',
            "webReplicas: got -1; expected an integer from 0 to 1000. Fix: set a replica count",
            "migrationDeadlineSeconds: got 5; expected an integer from 30 to 86400. Fix: set the Job's deadline in seconds",
            'cpuLimit: got "lots"; expected a Kubernetes quantity such as 250m, 1, 512Mi, 1Gi. Fix: use a Kubernetes resource quantity',
            'workers: got "web"; expected a DNS-1123 label of at most 52 characters (the Deployment App-worker-<name> is a DNS label), other than the reserved web and migrate. Fix: rename the worker',
        ],
    );
});

void test("KubernetesTarget: namespace and context", () => {
    assert.deepEqual(validateKubernetesTargetArgs({ namespace: "emr-uat", context: "uat" }), []);
    assert.deepEqual(validateKubernetesTargetArgs({ namespace: "EMR_uat", context: "my context" }), [
        'namespace: got "EMR_uat"; expected a DNS-1123 label (lowercase, digits, -; at most 63). Fix: rename the namespace',
        'context: got "my context"; expected a kubeconfig context name without whitespace. Fix: use a name from `kubectl config get-contexts`',
    ]);
});

void test("release pin: digest refs and tags are accepted, anything else is a config error", () => {
    assert.deepEqual(classifyPin(`r.example/app@sha256:${H}`), { kind: "digest", repository: "r.example/app", digest: `sha256:${H}` });
    assert.deepEqual(classifyPin("app-0123456789ab"), { kind: "tag", tag: "app-0123456789ab" });
    assert.throws(() => classifyPin("r/app@sha256:short"), {
        message:
            'thinlayer:releaseImage: got "r/app@sha256:short"; expected repo@sha256:<64 hex>, or a tag of appRepository such as app-0123456789ab. Fix: use `thinlayer rollback` to write a valid pin, or `thinlayer rollback --clear`',
    });
});

void test("ecrImageQuery: ECR pins are looked up by registry id, repository and tag or digest; other registries are not", () => {
    const ecr = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
    assert.deepEqual(ecrImageQuery({ kind: "tag", tag: "app-0123456789ab" }, `${ecr}/thinlayer/app`), {
        registryId: "123456789012",
        repositoryName: "thinlayer/app",
        imageTag: "app-0123456789ab",
    });
    assert.deepEqual(ecrImageQuery({ kind: "digest", repository: `${ecr}/thinlayer/app`, digest: `sha256:${H}` }, "ignored/when/digest"), {
        registryId: "123456789012",
        repositoryName: "thinlayer/app",
        imageDigest: `sha256:${H}`,
    });
    assert.equal(ecrImageQuery({ kind: "tag", tag: "app-0123456789ab" }, "registry.example:5000/thinlayer/app"), undefined);
    assert.equal(
        ecrImageQuery({ kind: "digest", repository: "evil.example/123456789012.dkr.ecr.eu-west-1.amazonaws.com/x", digest: `sha256:${H}` }, ""),
        undefined,
    );
});
