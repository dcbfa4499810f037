/**
 * The daemonless app build against a base whose config sets WorkingDir and Env: relative COPY
 * destinations resolve against the inherited WORKDIR, `$VAR` expands with the base Env, and the
 * result matches what buildah produces for the same Dockerfile (read with skopeo + umoci); so do
 * CMD/ENTRYPOINT against the base's inherited CMD.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { buildAndPush } from "../../lib/build/builders";
import { ensureImage, type EnsureResult } from "../../lib/build/ensure";
import { appTag, baseTag, computeAppInputs, computeBaseInputs } from "../../lib/plan";
import { buildahStorage, makeProject, skopeoConfig, tempDir, unpackWithUmoci, writeFiles } from "../helpers/images";
import { startRegistry, type StartedRegistry } from "../helpers/registry";
import { needTools, which } from "../helpers/tools";

const PLATFORM = "linux/amd64";
const quiet = () => undefined;

let reg: StartedRegistry | undefined;
let storage: ReturnType<typeof buildahStorage> | undefined;
let project: ReturnType<typeof makeProject>;
let base: { r: EnsureResult; hash: string } | undefined;

before(async () => {
    if (!which("busybox")) return;
    project = makeProject(tempDir());
    writeFiles(project.contextDir, {
        "Dockerfile.base": 'FROM scratch\nCOPY busybox /bin/busybox\nENV PATH=/bin APP_HOME=/srv/app\nWORKDIR /app\nCMD ["/bin/busybox", "sh"]\n',
        "manage.py": "print('manage')\n",
        "conf.txt": "conf\n",
    });
    if (which("buildah")) storage = buildahStorage();
    if (which("docker-registry")) reg = await startRegistry();
});
after(async () => {
    await reg?.stop();
    storage?.remove();
});

async function ensureBase(host: string): Promise<{ r: EnsureResult; hash: string }> {
    if (base) return base;
    const bi = await computeBaseInputs(
        { contextDir: project.contextDir, dockerfile: project.baseDockerfile, buildArgs: {}, platform: PLATFORM },
        { cache: false },
    );
    const r = await ensureImage(
        {
            image: "base",
            context: project.contextDir,
            dockerfile: project.baseDockerfile,
            repository: `${host}/t/base`,
            platform: PLATFORM,
            expectTag: baseTag(bi.hash),
            builder: "buildah",
        },
        { log: quiet, builderEnv: storage?.env },
    );
    base = { r, hash: bi.hash };
    return base;
}

async function ensureApp(host: string, dockerfile: string, repo: string, log: (l: string) => void = quiet): Promise<EnsureResult> {
    const b = await ensureBase(host);
    const ai = await computeAppInputs({ contextDir: project.contextDir, dockerfile, buildArgs: {}, platform: PLATFORM, baseHash: b.hash }, { cache: false });
    return ensureImage(
        {
            image: "app",
            context: project.contextDir,
            dockerfile,
            repository: `${host}/${repo}`,
            platform: PLATFORM,
            expectTag: appTag(ai.hash),
            baseRef: b.r.ref,
            baseHash: b.hash,
            builder: "buildah",
        },
        { log, builderEnv: storage?.env },
    );
}

/** Regular files of an unpacked image, as "path mode uid:gid" lines, sorted. */
function filesOf(rootfs: string): string[] {
    const out: string[] = [];
    const walk = (dir: string) => {
        for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
            const p = path.join(dir, e.name);
            if (e.isDirectory()) walk(p);
            else if (e.isFile()) {
                const st = fs.statSync(p);
                out.push(`/${path.relative(rootfs, p)} ${(st.mode & 0o777).toString(8)} ${st.uid}:${st.gid}`);
            }
        }
    };
    walk(rootfs);
    return out.sort();
}

test("a base with WORKDIR /app and ENV APP_HOME: daemonless COPY destinations and config match buildah's", async (t) => {
    if (!needTools(t, "busybox", "docker-registry", "buildah", "skopeo", "umoci")) return;
    const host = (reg as StartedRegistry).host;
    const df = path.join(project.contextDir, "Dockerfile.app");
    fs.writeFileSync(
        df,
        [
            "ARG BASE_IMAGE",
            "FROM ${BASE_IMAGE}",
            "COPY manage.py .",
            "COPY conf.txt $APP_HOME/",
            "COPY run.sh ${APP_HOME}/bin/run.sh",
            "ENV DATA=$APP_HOME/data",
            'CMD ["./manage.py"]',
            "",
        ].join("\n"),
    );
    const b = await ensureBase(host);
    const ours = await ensureApp(host, df, "t/app");
    assert.deepEqual([ours.action, ours.how], ["built", "daemonless"]);

    // The same Dockerfile built by buildah, pushed next to it.
    const theirsRef = `${host}/t/app-buildah:ref`;
    await buildAndPush({
        builder: "buildah",
        contextDir: project.contextDir,
        dockerfile: df,
        ref: theirsRef,
        host,
        platform: PLATFORM,
        buildArgs: { BASE_IMAGE: b.r.ref },
        env: storage?.env,
        stdio: "ignore",
    });

    const oursFiles = filesOf(unpackWithUmoci(ours.ref, tempDir()));
    const theirsFiles = filesOf(unpackWithUmoci(theirsRef, tempDir()));
    assert.ok(
        oursFiles.some((f) => f.startsWith("/app/manage.py ")),
        oursFiles.join("\n"),
    );
    assert.deepEqual(oursFiles, theirsFiles);

    const oc = skopeoConfig(ours.ref).config as { WorkingDir?: string; Env?: string[]; Cmd?: string[] };
    const tc = skopeoConfig(theirsRef).config as { WorkingDir?: string; Env?: string[]; Cmd?: string[] };
    assert.equal(oc.WorkingDir, "/app");
    assert.equal(oc.WorkingDir, tc.WorkingDir);
    assert.deepEqual(oc.Env, tc.Env);
    assert.ok(oc.Env?.includes("DATA=/srv/app/data"), String(oc.Env));
    assert.deepEqual(oc.Cmd, tc.Cmd);
});

test("a COPY destination naming a variable neither the base Env nor the Dockerfile defines: the builder runs, and says why", async (t) => {
    if (!needTools(t, "busybox", "docker-registry", "buildah", "skopeo")) return;
    const host = (reg as StartedRegistry).host;
    const df = path.join(project.contextDir, "Dockerfile.unknown");
    fs.writeFileSync(df, ["ARG BASE_IMAGE", "FROM ${BASE_IMAGE}", "COPY conf.txt $NOT_DEFINED/etc/", ""].join("\n"));
    const lines: string[] = [];
    const r = await ensureApp(host, df, "t/app-unknown", (l) => lines.push(l));
    assert.deepEqual([r.action, r.how], ["built", "buildah"]);
    assert.ok(
        lines.some((l) => /daemonless build not possible .*NOT_DEFINED/.test(l)),
        lines.join("\n"),
    );
});

test("CMD/ENTRYPOINT over a base with a CMD: daemonless Cmd and Entrypoint match buildah's (an ENTRYPOINT clears only an inherited CMD)", async (t) => {
    if (!needTools(t, "busybox", "docker-registry", "buildah", "skopeo")) return;
    const host = (reg as StartedRegistry).host;
    const b = await ensureBase(host);
    const variants: Record<string, string[]> = {
        "cmd-then-ep": ['CMD ["serve"]', 'ENTRYPOINT ["/bin/busybox"]'],
        "ep-only": ['ENTRYPOINT ["/bin/busybox"]'],
        "ep-then-cmd": ['ENTRYPOINT ["/bin/busybox"]', "CMD echo hi"],
    };
    for (const [name, lines] of Object.entries(variants)) {
        const df = path.join(project.contextDir, `Dockerfile.${name}`);
        fs.writeFileSync(df, ["ARG BASE_IMAGE", "FROM ${BASE_IMAGE}", "COPY conf.txt .", ...lines, ""].join("\n"));
        const ours = await ensureApp(host, df, `t/app-${name}`);
        assert.deepEqual([ours.action, ours.how], ["built", "daemonless"]);
        const theirsRef = `${host}/t/app-${name}-buildah:ref`;
        await buildAndPush({
            builder: "buildah",
            contextDir: project.contextDir,
            dockerfile: df,
            ref: theirsRef,
            host,
            platform: PLATFORM,
            buildArgs: { BASE_IMAGE: b.r.ref },
            env: storage?.env,
            stdio: "ignore",
        });
        const oc = skopeoConfig(ours.ref).config as { Cmd?: string[] | null; Entrypoint?: string[] | null };
        const tc = skopeoConfig(theirsRef).config as { Cmd?: string[] | null; Entrypoint?: string[] | null };
        assert.deepEqual([name, oc.Entrypoint ?? null, oc.Cmd ?? null], [name, tc.Entrypoint ?? null, tc.Cmd ?? null]);
    }
});

test("wildcard COPY of directories and an empty wildcard: the daemonless image holds exactly buildah's files", async (t) => {
    if (!needTools(t, "busybox", "docker-registry", "buildah", "skopeo", "umoci")) return;
    const host = (reg as StartedRegistry).host;
    writeFiles(project.contextDir, { "pkgs/dir1/a.txt": "a\n", "pkgs/dir2/sub/b.txt": "b\n", "pkgs/top.txt": "top\n", "package.json": "{}\n" });
    const df = path.join(project.contextDir, "Dockerfile.wild");
    // A matched directory's contents land in the destination (not the directory itself), and
    // `yarn.loc[k]` matching nothing copies nothing while package.json is still copied.
    fs.writeFileSync(df, ["ARG BASE_IMAGE", "FROM ${BASE_IMAGE}", "COPY pkgs/* /opt/", "COPY package.json yarn.loc[k] /srv/", ""].join("\n"));
    const b = await ensureBase(host);
    const ours = await ensureApp(host, df, "t/app-wild");
    assert.deepEqual([ours.action, ours.how], ["built", "daemonless"]);
    const theirsRef = `${host}/t/app-wild-buildah:ref`;
    await buildAndPush({
        builder: "buildah",
        contextDir: project.contextDir,
        dockerfile: df,
        ref: theirsRef,
        host,
        platform: PLATFORM,
        buildArgs: { BASE_IMAGE: b.r.ref },
        env: storage?.env,
        stdio: "ignore",
    });
    const oursFiles = filesOf(unpackWithUmoci(ours.ref, tempDir()));
    assert.ok(
        oursFiles.some((f) => f.startsWith("/opt/sub/b.txt ")),
        oursFiles.join("\n"),
    );
    assert.deepEqual(oursFiles, filesOf(unpackWithUmoci(theirsRef, tempDir())));
});
