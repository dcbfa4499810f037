import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { builderCommands, selectBuilder, writeTempAuth, type BuildRequest } from "../../lib/build/builders";
import type { BuilderName } from "../../lib/rules";
import { parseEnsureArgv } from "../../cli/ensure";

const req: BuildRequest = {
    builder: "buildah",
    contextDir: "/ctx",
    dockerfile: "/ctx/Dockerfile",
    ref: "127.0.0.1:5000/t/app:app-0123456789ab",
    host: "127.0.0.1:5000",
    platform: "linux/arm64",
    buildArgs: { Z: "1", BASE_IMAGE: "127.0.0.1:5000/t/base@sha256:" + "0".repeat(64) },
};

test("selectBuilder: first available of buildx, docker, podman, buildah; an explicit choice must be installed", () => {
    const only =
        (...names: BuilderName[]) =>
        (b: BuilderName) =>
            names.includes(b);
    assert.equal(selectBuilder("auto", only("podman", "buildah")), "podman");
    assert.equal(selectBuilder("auto", only("buildah")), "buildah");
    assert.equal(selectBuilder("auto", only("buildx", "buildah")), "buildx");
    assert.equal(selectBuilder("auto", only("docker", "podman", "buildah")), "docker");
    assert.equal(selectBuilder("auto", only("buildx", "docker")), "buildx");
    assert.equal(selectBuilder("buildah", only("buildx", "buildah")), "buildah");
    assert.throws(() => selectBuilder("podman", only("buildah")), /--builder: got podman; expected an installed builder/);
    assert.throws(() => selectBuilder("auto", only()), /no image builder found: tried docker buildx, docker \(the engine's BuildKit\), podman, buildah/);
});

test("builderCommands: explicit platform, sorted build args, temp auth file, plain HTTP only for loopback", () => {
    const env = { THINLAYER_BUILDAH_ROOT: "/r", THINLAYER_BUILDAH_RUNROOT: "/rr" };
    const [bud, push] = builderCommands(req, "/tmp/auth/config.json", env);
    assert.deepEqual(bud.args.slice(0, 7), ["--storage-driver", "vfs", "--root", "/r", "--runroot", "/rr", "bud"]);
    assert.ok(bud.args.includes("--isolation") && bud.args[bud.args.indexOf("--isolation") + 1] === "chroot");
    assert.equal(bud.args[bud.args.indexOf("--platform") + 1], "linux/arm64");
    assert.deepEqual(
        bud.args.filter((_, i) => bud.args[i - 1] === "--build-arg"),
        [`BASE_IMAGE=${req.buildArgs.BASE_IMAGE}`, "Z=1"],
    );
    for (const c of [bud, push]) {
        assert.equal(c.args[c.args.indexOf("--authfile") + 1], "/tmp/auth/config.json");
        assert.ok(c.args.includes("--tls-verify=false"));
    }
    assert.deepEqual(push.args.slice(-2), [req.ref, `docker://${req.ref}`]);
    const remote = builderCommands(
        { ...req, host: "123456789012.dkr.ecr.eu-west-1.amazonaws.com", ref: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/t/app:x" },
        "/a",
        {},
    );
    assert.ok(remote.every((c) => !c.args.includes("--tls-verify=false")));
    const [bx] = builderCommands({ ...req, builder: "buildx" }, "/tmp/auth/config.json", {});
    assert.deepEqual([bx.cmd, ...bx.args.slice(0, 4)], ["docker", "buildx", "build", "--platform", "linux/arm64"]);
    assert.ok(bx.args.includes("--push"));
    assert.deepEqual(bx.env, { DOCKER_CONFIG: "/tmp/auth" });
    const pd = builderCommands({ ...req, builder: "podman" }, "/a", {});
    assert.deepEqual(
        pd.map((c) => [c.cmd, c.args[0]]),
        [
            ["podman", "build"],
            ["podman", "push"],
        ],
    );
});

test("writeTempAuth: a 0600 file in a private dir holding only the registry's entry", () => {
    const a = writeTempAuth("127.0.0.1:5000", { source: "test", username: "u", password: "p" });
    try {
        assert.equal(fs.statSync(a.file).mode & 0o777, 0o600);
        assert.equal(fs.statSync(a.dir).mode & 0o777, 0o700);
        assert.deepEqual(JSON.parse(fs.readFileSync(a.file, "utf8")), { auths: { "127.0.0.1:5000": { auth: Buffer.from("u:p").toString("base64") } } });
    } finally {
        fs.rmSync(a.dir, { recursive: true, force: true });
    }
    const anon = writeTempAuth("h", { source: "anonymous" });
    assert.deepEqual(JSON.parse(fs.readFileSync(anon.file, "utf8")), { auths: {} });
    fs.rmSync(anon.dir, { recursive: true, force: true });
});

test("ensure argv: bad input names the flag, the value, what is allowed and the fix", () => {
    assert.throws(() => parseEnsureArgv(["nope"]), /ensure <image>: got "nope"; expected base or app/);
    assert.throws(() => parseEnsureArgv(["base", "--dockerfile", "D", "--repository", "r/x", "--expect-tag", "t"]), /--context: got \(missing\)/);
    assert.throws(
        () => parseEnsureArgv(["base", "--context", "c", "--dockerfile", "D", "--repository", "r/x", "--expect-tag", "t", "--build-arg", "NOEQ"]),
        /--build-arg: got "NOEQ"; expected NAME=VALUE/,
    );
    assert.throws(
        () => parseEnsureArgv(["base", "--context", "c", "--dockerfile", "D", "--repository", "r/x", "--expect-tag", "t", "--builder", "kaniko"]),
        /--builder: got "kaniko"; expected auto, buildx, docker, podman or buildah/,
    );
    assert.throws(
        () => parseEnsureArgv(["base", "--context", "c", "--dockerfile", "D", "--repository", "r/x", "--expect-tag", "t", "--platform", "amd64"]),
        /--platform: got "amd64"; expected os\/arch/,
    );
    const ok = parseEnsureArgv(["app", "--context", "c", "--dockerfile", "D", "--repository", "r/x", "--expect-tag", "t", "--build-arg", "A=b=c", "--json"]);
    if (ok === "help") throw new Error("parsed as --help");
    assert.deepEqual([ok.opts.image, ok.opts.platform, ok.opts.buildArgs, ok.opts.json], ["app", "linux/amd64", { A: "b=c" }, true]);
});
