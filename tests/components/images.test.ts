/**
 * BaseImage / AppImage: the command line each declares, its triggers, the ref parsed from the
 * CLI's stdout, and the preview-time registry check against a real registry.
 */
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { fakeDigest, installMocks, seenResource, valueOf, type SeenResource } from "../helpers/mocks";
import { AppImage, BaseImage } from "../../components/images";
import { ensureCommandLine, parseEnsureOutput, shellQuote } from "../../components/ensureCommand";
import { needTools } from "../helpers/tools";
import { startRegistry } from "../helpers/registry";
import { RegistryClient } from "../../lib/oci/client";
import { pushScratchImage } from "../helpers/images";

const ROOT = path.resolve(__dirname, "..", "..");
const APP = path.join(ROOT, "examples", "django-app");
const BH = "1".repeat(64);
const AH = "2".repeat(64);
const REPO = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/thinlayer";

let seen: SeenResource[];
before(async () => {
    seen = await installMocks(pulumi);
});

void test("BaseImage: one local.Command child running `thinlayer ensure base`, triggered by hash, repository and platform", async () => {
    const img = new BaseImage("base", {
        projectDir: ROOT,
        image: { image: "base", contextDir: APP, dockerfile: path.join(APP, "Dockerfile.base"), hash: BH },
        repositoryUrl: `${REPO}/base`,
        buildArgs: { PIP_INDEX: "https://pypi.example/simple", A: "1" },
        builder: "buildah",
    });
    const cmd = await seenResource(seen, (r) => r.type === "command:local:Command" && r.name === "base-ensure");
    assert.equal(
        cmd.inputs.create,
        `node bin/thinlayer.js ensure base --context examples/django-app --dockerfile examples/django-app/Dockerfile.base --repository ${REPO}/base --platform linux/amd64 ` +
            `--build-arg A=1 --build-arg PIP_INDEX=https://pypi.example/simple --expect-tag deps-111111111111 --builder buildah --json`,
    );
    assert.equal(cmd.inputs.dir, ROOT);
    assert.deepEqual(cmd.inputs.triggers, [BH, `${REPO}/base`, "linux/amd64"]);
    assert.equal(await valueOf(img.imageRef), `${REPO}/base@${fakeDigest(`${REPO}/base`, "deps-111111111111")}`);
    assert.equal(await valueOf(img.action), "built");
    assert.equal(await valueOf(img.registryStatus), "not-checked", "outside preview the registry is the CLI's business");
    const urn = await valueOf(img.urn);
    assert.match(urn, /::thinlayer:image:BaseImage::base$/);
});

void test("AppImage: `thinlayer ensure app` with the base ref and base hash", async () => {
    const baseRef = `${REPO}/base@sha256:${"3".repeat(64)}`;
    const img = new AppImage("app", {
        projectDir: ROOT,
        image: { image: "app", contextDir: APP, dockerfile: path.join(APP, "Dockerfile"), hash: AH },
        repositoryUrl: pulumi.output(`${REPO}/app`),
        baseRef: pulumi.output(baseRef),
        baseHash: BH,
        platform: "linux/arm64",
    });
    const cmd = await seenResource(seen, (r) => r.type === "command:local:Command" && r.name === "app-ensure");
    assert.equal(
        cmd.inputs.create,
        `node bin/thinlayer.js ensure app --context examples/django-app --dockerfile examples/django-app/Dockerfile --repository ${REPO}/app --platform linux/arm64 ` +
            `--base-ref ${baseRef} --base-hash ${BH} --expect-tag app-222222222222 --json`,
    );
    assert.deepEqual(cmd.inputs.triggers, [AH, `${REPO}/app`, "linux/arm64"]);
    assert.match(await valueOf(img.imageRef), new RegExp(`^${REPO.replace(/\./g, "\\.")}/app@sha256:[a-f0-9]{64}$`));
});

void test("the command line does not depend on where the project is checked out", () => {
    const opts = (root: string) => ({
        image: "base" as const,
        context: path.join(root, "app"),
        dockerfile: path.join(root, "app", "Dockerfile.base"),
        repository: "r/x",
        expectTag: "deps-x",
    });
    assert.equal(ensureCommandLine("/home/a/src/proj", opts("/home/a/src/proj")), ensureCommandLine("/ci/work/proj", opts("/ci/work/proj")));
});

void test("the command line hands NODE_EXTRA_CA_CERTS over to the CLI, except for ECR (the AWS SDK needs it at start-up)", () => {
    const opts = (repository: string, baseRef?: string) => ({
        image: "app" as const,
        context: APP,
        dockerfile: path.join(APP, "Dockerfile"),
        repository,
        baseRef,
        baseHash: BH,
        expectTag: "app-x",
    });
    const line = ensureCommandLine(ROOT, opts("127.0.0.1:5000/t/app", `127.0.0.1:5000/t/base@sha256:${"3".repeat(64)}`));
    const at = line.indexOf("node bin/thinlayer.js ensure app ");
    assert.equal(line.slice(0, at), "THINLAYER_EXTRA_CA_CERTS=${NODE_EXTRA_CA_CERTS-} NODE_EXTRA_CA_CERTS= ");
    // What the CLI's process gets through sh: the file (even with a space and a quote) moved over, Node's variable blank.
    const seenBy = (env: NodeJS.ProcessEnv) =>
        JSON.parse(
            execFileSync(
                "/bin/sh",
                ["-c", `${line.slice(0, at)}node -p 'JSON.stringify([process.env.THINLAYER_EXTRA_CA_CERTS, process.env.NODE_EXTRA_CA_CERTS])'`],
                {
                    encoding: "utf8",
                    env,
                },
            ),
        ) as unknown;
    const { NODE_EXTRA_CA_CERTS: _drop, ...without } = process.env;
    assert.deepEqual(seenBy({ ...without, NODE_EXTRA_CA_CERTS: "/certs/it's a.pem" }), ["/certs/it's a.pem", ""]);
    assert.deepEqual(seenBy(without), ["", ""]);
    // ECR, as the registry or as the base's: nothing handed over.
    const ecrBase = `${REPO}/base@sha256:${"3".repeat(64)}`;
    assert.ok(ensureCommandLine(ROOT, opts(`${REPO}/app`, ecrBase)).startsWith("node bin/thinlayer.js ensure app "));
    assert.ok(ensureCommandLine(ROOT, opts("127.0.0.1:5000/t/app", ecrBase)).startsWith("node bin/thinlayer.js ensure app "));
});

void test("shellQuote: what sh reads back is the original argument", () => {
    for (const arg of ["plain", "with space", "it's", "$HOME", 'a"b', "", "--build-arg=X=a b;rm -rf /"]) {
        const echoed = execFileSync("/bin/sh", ["-c", `printf '%s' ${shellQuote(arg)}`], { encoding: "utf8" });
        assert.equal(echoed, arg);
    }
});

void test("parseEnsureOutput: accepts the asked-for image, names what differs otherwise", () => {
    const digest = `sha256:${"4".repeat(64)}`;
    const ok = {
        ref: `r/app@${digest}`,
        repository: "r/app",
        tag: "app-1",
        digest,
        action: "reused",
        how: "registry",
        bytesUploaded: 0,
        bytesDownloaded: 0,
        seconds: 0.1,
    };
    assert.equal(parseEnsureOutput(JSON.stringify(ok) + "\n", { repository: "r/app", tag: "app-1" }).ref, `r/app@${digest}`);
    assert.throws(() => parseEnsureOutput(JSON.stringify(ok), { repository: "r/app", tag: "app-2" }), {
        message: `thinlayer ensure result: got ref "r/app@${digest}", tag "app-1", action "reused"; expected ref r/app@sha256:<64 hex>, tag app-2, action built|reused. Fix: the CLI and the program disagree; rerun pulumi up, and report the output if it repeats`,
    });
    assert.throws(() => parseEnsureOutput("building...\n{}", { repository: "r/app", tag: "app-1" }), /expected exactly one JSON object/);
});

void test("preview: each image asks the registry whether its tag exists (exists / missing / unknown), never failing", { timeout: 60_000 }, async (t) => {
    if (!needTools(t, "docker-registry")) return;
    const registry = await startRegistry();
    try {
        await pushScratchImage(new RegistryClient(registry.host), "thinlayer/base", "deps-111111111111", [
            [{ dest: "/etc", type: "directory", mode: 0o755, uid: 0, gid: 0 }],
        ]);
        const common = { projectDir: ROOT, checkRegistry: true };
        const base = { image: "base" as const, contextDir: APP, dockerfile: path.join(APP, "Dockerfile.base"), hash: BH };
        const present = new BaseImage("base-present", { ...common, image: base, repositoryUrl: `${registry.host}/thinlayer/base` });
        const absent = new AppImage("app-absent", {
            ...common,
            image: { ...base, image: "app", dockerfile: path.join(APP, "Dockerfile"), hash: AH },
            repositoryUrl: `${registry.host}/thinlayer/app`,
            baseRef: "x",
            baseHash: BH,
        });
        const unreachable = new BaseImage("base-unreachable", { ...common, image: base, repositoryUrl: "127.0.0.1:9/thinlayer/base" });
        assert.equal(await valueOf(present.registryStatus), "exists");
        assert.equal(await valueOf(absent.registryStatus), "missing");
        assert.equal(await valueOf(unreachable.registryStatus), "unknown");
    } finally {
        await registry.stop();
    }
});
