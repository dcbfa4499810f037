/**
 * The `docker` builder against a real dockerd (its own data root and socket, Debian's 20.10 with
 * built-in BuildKit) and a real registry: RUN, RUN --mount=type=bind, multi-stage, build args, an
 * explicit platform, credentials only in a temporary DOCKER_CONFIG, the digest read back from the
 * registry. Files are read back independently (skopeo + umoci), never from docker's output.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { buildAndPush, builderCommands, dockerBuilderProblem, selectBuilder, type BuildRequest } from "../../lib/build/builders";
import { ensureImage } from "../../lib/build/ensure";
import { baseTag, computeBaseInputs } from "../../lib/plan";
import { RegistryClient } from "../../lib/oci/client";
import { DOCKERD_TOOLS, startDockerd, type StartedDockerd } from "../helpers/dockerd";
import { BUSYBOX, pushScratchImage, skopeoConfig, skopeoRaw, tempDir, unpackWithUmoci, writeFiles } from "../helpers/images";
import { startRegistry, type StartedRegistry } from "../helpers/registry";
import { which } from "../helpers/tools";

const TOOLS = [...DOCKERD_TOOLS, "docker-registry", "htpasswd", "skopeo", "umoci", BUSYBOX];
const missing = TOOLS.filter((t) => (t.startsWith("/") ? !fs.existsSync(t) : which(t) === undefined));
const skip =
    missing.length > 0 && process.env.CI !== "true"
        ? `missing tools: ${missing.join(", ")} (apt-get install -y docker.io docker-registry apache2-utils skopeo umoci busybox-static)`
        : false;

let dockerd: StartedDockerd;
let registry: StartedRegistry;
/** busybox on a scratch image, pushed without any builder: the FROM of every test build. */
let busyboxRef: string;
const scratch: string[] = [];

before(async () => {
    if (skip) return;
    if (missing.length) throw new Error(`missing tools: ${missing.join(", ")}; CI=true, so this is a failure, not a skip`);
    [dockerd, registry] = await Promise.all([startDockerd(), startRegistry({ htpasswd: { user: "builder", password: "s3cret-pw" } })]);
    const applets = ["sh", "cat", "echo", "ls", "mkdir", "test", "wc"];
    const client = new RegistryClient(registry.host, { dockerConfig: path.join(registry.dockerConfigDir as string, "config.json") });
    const { digest } = await pushScratchImage(client, "t/busybox", "1", [
        [
            { dest: "/bin", type: "directory", mode: 0o755, uid: 0, gid: 0 },
            { dest: "/bin/busybox", type: "file", source: BUSYBOX, mode: 0o755, uid: 0, gid: 0 },
            ...applets.map((a) => ({ dest: `/bin/${a}`, type: "symlink" as const, linkname: "busybox", mode: 0o777, uid: 0, gid: 0 })),
        ],
    ]);
    busyboxRef = `${registry.host}/t/busybox@${digest}`;
});

after(async () => {
    for (const d of scratch) fs.rmSync(d, { recursive: true, force: true });
    await Promise.all([dockerd?.stop(), registry?.stop()]);
});

/** A context whose Dockerfile uses everything buildah handles today. */
function multiStageContext(): string {
    const dir = tempDir("thinlayer-docker-ctx-");
    scratch.push(dir);
    writeFiles(dir, {
        Dockerfile: [
            "ARG BASE",
            "FROM ${BASE} AS build",
            "ARG GREETING=hello",
            'RUN mkdir -p /out && echo "$GREETING from build" > /out/greeting.txt',
            "RUN --mount=type=bind,source=data,target=/mnt/data cat /mnt/data/input.txt > /out/from-mount.txt && ls /mnt/data > /out/listing.txt",
            "",
            "FROM ${BASE}",
            "ARG GREETING",
            "COPY --from=build /out/ /srv/",
            'RUN echo "final saw ${GREETING:-unset}" > /srv/final.txt',
            'CMD ["cat", "/srv/final.txt"]',
            "",
        ].join("\n"),
        "data/input.txt": "read through a bind mount\n",
        "data/second.txt": "2\n",
        "unused.txt": "not in the image\n",
    });
    return dir;
}

test("docker builder: RUN, RUN --mount=type=bind, multi-stage and build args, pushed with credentials from a temporary DOCKER_CONFIG", { skip }, async () => {
    const contextDir = multiStageContext();
    const dockerfile = path.join(contextDir, "Dockerfile");
    const buildArgs = { BASE: busyboxRef, GREETING: "hola" };
    const inputs = await computeBaseInputs({ contextDir, dockerfile, buildArgs, platform: "linux/amd64" });
    // The user's own docker config must stay as it is: the builder gets the credentials elsewhere.
    const userConfig = tempDir("thinlayer-user-docker-");
    scratch.push(userConfig);
    fs.writeFileSync(path.join(userConfig, "config.json"), "{}\n");
    const log: string[] = [];
    const r = await ensureImage(
        {
            image: "base",
            context: contextDir,
            dockerfile,
            repository: `${registry.host}/t/multi`,
            platform: "linux/amd64",
            buildArgs,
            expectTag: baseTag(inputs.hash),
            builder: "docker",
        },
        {
            dockerConfig: path.join(registry.dockerConfigDir as string, "config.json"),
            builderEnv: { ...dockerd.env, DOCKER_CONFIG: userConfig },
            log: (l) => log.push(l),
        },
    );
    assert.equal(r.action, "built");
    assert.equal(r.how, "docker");
    assert.deepEqual(JSON.parse(fs.readFileSync(path.join(userConfig, "config.json"), "utf8")), {}, "the user's DOCKER_CONFIG was written to");

    // The digest is the registry's: HEAD by tag gives it, and it is not docker's local image id.
    const creds = "builder:s3cret-pw";
    const manifest = skopeoRaw(`${registry.host}/t/multi:${r.tag}`, creds) as { config: { digest: string } };
    const head = await new RegistryClient(registry.host, { dockerConfig: path.join(registry.dockerConfigDir as string, "config.json") }).headManifest(
        "t/multi",
        r.tag,
    );
    assert.equal(r.digest, head?.digest);
    const localId = dockerd.docker(["image", "inspect", "--format", "{{.Id}}", `${registry.host}/t/multi:${r.tag}`]).trim();
    assert.equal(localId, manifest.config.digest, "docker's image id is its config digest, not the manifest digest");
    assert.notEqual(r.digest, localId);

    // Files, read back by an independent reader.
    const work = tempDir("thinlayer-docker-read-");
    scratch.push(work);
    fs.writeFileSync(path.join(work, "auth.json"), fs.readFileSync(path.join(registry.dockerConfigDir as string, "config.json")));
    process.env.REGISTRY_AUTH_FILE = path.join(work, "auth.json");
    const rootfs = unpackWithUmoci(`${registry.host}/t/multi@${r.digest}`, work);
    delete process.env.REGISTRY_AUTH_FILE;
    const read = (p: string) => fs.readFileSync(path.join(rootfs, p), "utf8");
    assert.equal(read("srv/greeting.txt"), "hola from build\n");
    assert.equal(read("srv/from-mount.txt"), "read through a bind mount\n");
    assert.equal(read("srv/listing.txt"), "input.txt\nsecond.txt\n");
    assert.equal(read("srv/final.txt"), "final saw hola\n");
    assert.ok(!fs.existsSync(path.join(rootfs, "mnt/data")), "the bind mount's files leaked into the image");
    assert.ok(!fs.existsSync(path.join(rootfs, "unused.txt")) && !fs.existsSync(path.join(rootfs, "srv/unused.txt")));
    assert.equal(fs.readlinkSync(path.join(rootfs, "bin/sh")), "busybox");

    // The second run finds the tag in the registry and builds nothing.
    const again = await ensureImage(
        {
            image: "base",
            context: contextDir,
            dockerfile,
            repository: `${registry.host}/t/multi`,
            platform: "linux/amd64",
            buildArgs,
            expectTag: baseTag(inputs.hash),
            builder: "docker",
        },
        { dockerConfig: path.join(registry.dockerConfigDir as string, "config.json"), builderEnv: dockerd.env },
    );
    assert.deepEqual([again.action, again.how, again.digest], ["reused", "registry", r.digest]);
});

test("docker builder: the platform is explicit (a copy-only linux/arm64 image from an amd64 machine)", { skip }, async () => {
    const contextDir = tempDir("thinlayer-docker-arm-");
    scratch.push(contextDir);
    writeFiles(contextDir, { Dockerfile: "FROM scratch\nCOPY hello.txt /hello.txt\n", "hello.txt": "hi\n" });
    const dockerfile = path.join(contextDir, "Dockerfile");
    const inputs = await computeBaseInputs({ contextDir, dockerfile, buildArgs: {}, platform: "linux/arm64" });
    const r = await ensureImage(
        {
            image: "base",
            context: contextDir,
            dockerfile,
            repository: `${registry.host}/t/arm`,
            platform: "linux/arm64",
            buildArgs: {},
            expectTag: baseTag(inputs.hash),
            builder: "docker",
        },
        { dockerConfig: path.join(registry.dockerConfigDir as string, "config.json"), builderEnv: dockerd.env },
    );
    assert.equal(r.how, "docker");
    const work = tempDir("thinlayer-docker-arm-read-");
    scratch.push(work);
    fs.writeFileSync(path.join(work, "auth.json"), fs.readFileSync(path.join(registry.dockerConfigDir as string, "config.json")));
    process.env.REGISTRY_AUTH_FILE = path.join(work, "auth.json");
    try {
        const cfg = skopeoConfig(`${registry.host}/t/arm@${r.digest}`) as unknown as { architecture: string; os: string };
        assert.deepEqual([cfg.os, cfg.architecture], ["linux", "arm64"]);
    } finally {
        delete process.env.REGISTRY_AUTH_FILE;
    }
});

test("docker builder: a push the registry refuses (no credentials) fails with the client's error, and nothing is tagged", { skip }, async () => {
    const contextDir = tempDir("thinlayer-docker-noauth-");
    scratch.push(contextDir);
    writeFiles(contextDir, { Dockerfile: "FROM scratch\nCOPY a.txt /a.txt\n", "a.txt": "a\n" });
    const ref = `${registry.host}/t/noauth:deps-000000000000`;
    await assert.rejects(
        buildAndPush({
            builder: "docker",
            contextDir,
            dockerfile: path.join(contextDir, "Dockerfile"),
            ref,
            host: registry.host,
            platform: "linux/amd64",
            buildArgs: {},
            credentials: { source: "anonymous" },
            stdio: "ignore",
            env: dockerd.env,
        }),
        /docker push \S+ … failed with exit code 1:[\s\S]*(no basic auth credentials|unauthorized|authentication required)/i,
    );
    const client = new RegistryClient(registry.host, { dockerConfig: path.join(registry.dockerConfigDir as string, "config.json") });
    assert.equal(await client.headManifest("t/noauth", "deps-000000000000"), undefined);
});

test("docker builder availability: the daemon must answer, and a 23+ client without buildx is refused with the fix", { skip }, () => {
    assert.equal(dockerBuilderProblem({ ...process.env, ...dockerd.env }), undefined, "Debian's 20.10 client drives the daemon's BuildKit");
    const down = dockerBuilderProblem({ ...process.env, ...dockerd.env, DOCKER_HOST: "unix:///nonexistent/docker.sock" });
    assert.match(down ?? "", /cannot reach a Docker daemon/);
    assert.throws(
        () =>
            selectBuilder(
                "docker",
                () => false,
                () => down ?? "",
            ),
        /--builder: got docker; expected an installed builder\. Fix: .*cannot reach a Docker daemon.*, or use --builder auto/,
    );
    const newer = "/usr/local/bin/docker";
    const newerMajor = fs.existsSync(newer)
        ? Number(/^(\d+)/.exec(String(spawnSync(newer, ["version", "--format", "{{.Client.Version}}"], { encoding: "utf8" }).stdout))?.[1])
        : NaN;
    const newerHasBuildx = fs.existsSync(newer) && spawnSync(newer, ["buildx", "version"]).status === 0;
    if (newerMajor >= 23 && !newerHasBuildx) {
        assert.match(
            dockerBuilderProblem({ ...process.env, ...dockerd.env, THINLAYER_DOCKER: newer }) ?? "",
            /needs the buildx plugin for BuildKit and has none .*THINLAYER_DOCKER/,
        );
    }
});

test("builderCommands docker: BuildKit through `docker build` then `docker push` without buildx, `buildx build --push` with it", () => {
    const req: BuildRequest = {
        builder: "docker",
        contextDir: "/ctx",
        dockerfile: "/ctx/Dockerfile",
        ref: "127.0.0.1:5000/t/app:deps-0123456789ab",
        host: "127.0.0.1:5000",
        platform: "linux/arm64",
        buildArgs: { Z: "1", A: "x=y" },
        dockerBuildx: false,
    };
    const [build, push] = builderCommands(req, "/tmp/auth/config.json", { THINLAYER_DOCKER: "/usr/bin/docker" });
    assert.equal(build.cmd, "/usr/bin/docker");
    assert.deepEqual(build.args, [
        "build",
        "--platform",
        "linux/arm64",
        "-f",
        "/ctx/Dockerfile",
        "-t",
        req.ref,
        "--build-arg",
        "A=x=y",
        "--build-arg",
        "Z=1",
        "/ctx",
    ]);
    assert.deepEqual(build.env, { DOCKER_CONFIG: "/tmp/auth", DOCKER_BUILDKIT: "1" });
    assert.deepEqual([push.cmd, push.args, push.env, push.push], ["/usr/bin/docker", ["push", req.ref], { DOCKER_CONFIG: "/tmp/auth" }, true]);
    const bx = builderCommands({ ...req, dockerBuildx: true }, "/tmp/auth/config.json", {});
    assert.equal(bx.length, 1);
    assert.deepEqual([bx[0].cmd, ...bx[0].args.slice(0, 4)], ["docker", "buildx", "build", "--platform", "linux/arm64"]);
    assert.ok(bx[0].args.includes("--push"));
    assert.deepEqual(bx[0].env, { DOCKER_CONFIG: "/tmp/auth" });
});
