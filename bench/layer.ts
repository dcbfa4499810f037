/**
 * `npm run bench layer`: an app-only update (one file of 200 changed) of a ~20 MB app on a ~200 MB
 * base, pushed to one local registry, side by side in one run, for three cases: incompressible
 * random files and Python-like source text over loopback, and source text over a simulated link.
 * Each round times, in turn:
 *
 *   thinlayer process   `node bin/thinlayer.js ensure app … --json`, exactly as the Pulumi program
 *                       runs it: its command line (components/ensureCommand.ts) through /bin/sh, as
 *                       local.Command runs it: Node start-up, the compiled CLI (or tsx when build/
 *                       is missing or stale), hashing the context, the build, the push
 *   thinlayer in-proc   the same ensureImage() call inside this process (no start-up)
 *   BuildKit warm       `DOCKER_BUILDKIT=1 docker build` + `docker push` on a dockerd whose store
 *                       already holds the base (pulled before the scenario) and keeps its build cache
 *   BuildKit empty      the same on a brand-new dockerd (fresh data root: no image, no build cache,
 *                       as on a fresh CI runner), started before the round and stopped after it,
 *                       neither of which is timed
 *   buildah             `buildah bud` (FROM base + COPY) + `buildah push`, fresh storage each round
 *
 * Every tool talks to the registry through one counting proxy (in this process), so "uploaded" and
 * "downloaded" are the same measure for all: request and response body bytes. Base-layer blob GETs
 * (and their bytes) come from the registry's own access log. Prints each round and the medians.
 * Targets: the thinlayer process >= 10x faster than BuildKit warm and >= 20x than BuildKit empty;
 * bytes uploaded no more than BuildKit's; no base-layer bytes downloaded.
 */
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ensureCommandLine } from "../components/ensureCommand";
import { ensureImage } from "../lib/build/ensure";
import { appTag, computeAppInputs } from "../lib/plan";
import { RegistryClient } from "../lib/oci/client";
import { DOCKER, DOCKERD_TOOLS, startDockerd, type StartedDockerd } from "../tests/helpers/dockerd";
import { buildahStorage, pushScratchImage } from "../tests/helpers/images";
import { startProxy, startRegistry, type StartedProxy } from "../tests/helpers/registry";

const MB = 1024 * 1024;
const BASE_LAYERS = 4;
const BASE_LAYER_BYTES = 50 * MB;
const APP_FILES = 200;
const APP_FILE_BYTES = 100 * 1024; // 200 x 100 KiB = ~20 MB
const ROUNDS = Number(process.env.BENCH_LAYER_ROUNDS ?? 3);
const PLATFORM = "linux/amd64";
const ROOT = path.resolve(__dirname, "..");

function writeRandom(file: string, bytes: number): void {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const fd = fs.openSync(file, "w");
    for (let left = bytes; left > 0; left -= MB) fs.writeSync(fd, randomBytes(Math.min(MB, left)));
    fs.closeSync(fd);
}

const WORDS = [
    "def",
    "return",
    "self",
    "request",
    "model",
    "patient",
    "record",
    "import",
    "from",
    "class",
    "if",
    "else",
    "for",
    "in",
    "None",
    "True",
    "queryset",
    "render",
    "context",
    "field",
];

/** Python-like source text with random identifiers: compresses roughly like real code. */
function writeSource(file: string, bytes: number): void {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const rnd = randomBytes(bytes);
    let out = "";
    let i = 0;
    while (out.length < bytes) {
        const indent = "    ".repeat(rnd[i++ % rnd.length] % 3);
        const n = 3 + (rnd[i++ % rnd.length] % 6);
        const words: string[] = [];
        for (let k = 0; k < n; k++) {
            const r = rnd[i++ % rnd.length];
            words.push(r < 200 ? WORDS[r % WORDS.length] : `v_${rnd.toString("hex", i % (rnd.length - 4), (i % (rnd.length - 4)) + 3)}`);
        }
        out += `${indent}${words.join(" ")}\n`;
    }
    fs.writeFileSync(file, out.slice(0, bytes));
}

function median(xs: number[]): number {
    const s = [...xs].sort((a, b) => a - b);
    const m = Math.floor(s.length / 2);
    return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Runs a command asynchronously (the counting proxy lives in this process and must keep serving); resolves with its stdout. */
function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, onStderr?: (text: string) => void, cwd?: string): Promise<string> {
    return new Promise((resolve, reject) => {
        const p = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env }, cwd });
        let out = "";
        let err = "";
        if (onStderr) p.stderr.on("data", (c: Buffer) => onStderr(c.toString("utf8")));
        p.stdout.on("data", (c: Buffer) => {
            out += c.toString("utf8");
        });
        p.stderr.on("data", (c: Buffer) => {
            err = (err + c.toString("utf8")).slice(-4000);
        });
        p.on("error", reject);
        p.on("exit", (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(" ")} failed (${code}): ${err}`))));
    });
}

const mb = (n: number) => (n / MB).toFixed(2);
const seconds = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;

type Tool = "process" | "inproc" | "bkWarm" | "bkEmpty" | "buildah";
const TOOLS: { key: Tool; label: string }[] = [
    { key: "process", label: "thinlayer process" },
    { key: "inproc", label: "thinlayer in-process" },
    { key: "bkWarm", label: "BuildKit, base in store" },
    { key: "bkEmpty", label: "BuildKit, empty store" },
    { key: "buildah", label: "buildah, empty storage" },
];
interface Sample {
    /** Bytes of the provenance attestation among `up` (the thinlayer process only). */
    attest?: number;
    s: number;
    up: number;
    down: number;
    baseGets: number;
    baseBytes: number;
}

/** `docker build` + `docker push` of the app through BuildKit on one daemon; the caller times it. */
async function buildkitBuildPush(d: StartedDockerd, env: NodeJS.ProcessEnv, ctx: string, dockerfile: string, base: string, tag: string): Promise<void> {
    const e = { ...d.env, ...env, DOCKER_BUILDKIT: "1" };
    await run(DOCKER, ["build", "--quiet", "--platform", PLATFORM, "--build-arg", `BASE_IMAGE=${base}`, "-f", dockerfile, "-t", tag, ctx], e);
    await run(DOCKER, ["push", "--quiet", tag], e);
}

/**
 * A frozen, built copy of the CLI, as an install has it: bin/, cli/, lib/ and the build script copied
 * from this tree, node_modules linked, then `scripts/build.mjs` run in the copy. The tree itself
 * may be edited while the benchmark runs (bin/thinlayer.js would then rightly fall back to tsx);
 * the copy cannot be, so every round measures the compiled CLI. Returns its bin/thinlayer.js.
 */
async function installedCli(work: string): Promise<string> {
    const dir = path.join(work, "cli");
    for (const rel of ["bin", "cli", "lib", "scripts/build.mjs", "package.json", "tsconfig.json", "tsconfig.build.json", "Pulumi.yaml"]) {
        fs.cpSync(path.join(ROOT, rel), path.join(dir, rel), { recursive: true });
    }
    fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(dir, "node_modules"));
    // The copies are dated a minute back, as an install's files are: the build's stamp (its start,
    // less a second for coarse mtimes) must be newer than every source, or bin/thinlayer.js would
    // rightly take the TypeScript through tsx (the first runs of this benchmark measured that).
    const past = new Date(Date.now() - 60_000);
    const age = (p: string): void => {
        if (fs.statSync(p).isDirectory()) for (const e of fs.readdirSync(p)) age(path.join(p, e));
        fs.utimesSync(p, past, past);
    };
    for (const rel of ["bin", "cli", "lib", "package.json", "tsconfig.json", "tsconfig.build.json"]) age(path.join(dir, rel));
    await run(process.execPath, [path.join(dir, "scripts", "build.mjs")]);
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { compiledIsFresh } = require("../bin/fresh.js") as { compiledIsFresh(root: string): boolean };
    if (!compiledIsFresh(dir))
        throw new Error(`bench layer: the CLI copy in ${dir} would not run its compiled build (bin/fresh.js says stale); refusing to measure tsx`);
    return path.join(dir, "bin", "thinlayer.js");
}

/**
 * Node's own start-up here, as `node -e 0` (medians of 5), with NODE_EXTRA_CA_CERTS as this
 * environment has it and without: Node parses that file before any code runs, which the program's
 * command line avoids by handing it over (lib/oci/trust.ts). Printed so the process row can be read
 * on a machine that does not set it.
 */
async function reportNodeStart(): Promise<void> {
    const extra = process.env.NODE_EXTRA_CA_CERTS;
    const time = async (env: NodeJS.ProcessEnv) => {
        const xs: number[] = [];
        for (let i = 0; i < 5; i++) {
            const t0 = process.hrtime.bigint();
            await run(process.execPath, ["-e", "0"], env);
            xs.push(seconds(t0) * 1000);
        }
        return median(xs);
    };
    const without = await time({ NODE_EXTRA_CA_CERTS: "" });
    if (extra) {
        const withIt = await time({ NODE_EXTRA_CA_CERTS: extra });
        console.log(
            `node -e 0: ${without.toFixed(0)} ms; with NODE_EXTRA_CA_CERTS=${extra} (as set here): ${withIt.toFixed(0)} ms (the CLI's command line hands it over)`,
        );
    } else console.log(`node -e 0: ${without.toFixed(0)} ms (NODE_EXTRA_CA_CERTS is not set here)`);
}

export async function main(): Promise<void> {
    for (const tool of ["docker-registry", "buildah", ...DOCKERD_TOOLS]) {
        if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0)
            throw new Error(`bench layer needs ${tool} (apt-get install -y docker-registry buildah docker.io iptables iproute2)`);
    }
    const work = fs.mkdtempSync(path.join(os.tmpdir(), "thinlayer-bench-layer-"));
    const cli = await installedCli(work);
    const cliDir = path.dirname(path.dirname(cli));
    console.log(
        `thinlayer process: the program's command line, run by /bin/sh in ${cliDir} (a built copy of this tree's bin/, cli/ and lib/: the compiled CLI)`,
    );
    await reportNodeStart();
    // No user credentials or docker config for any tool: an empty DOCKER_CONFIG.
    const dockerConfig = path.join(work, "docker-config");
    fs.mkdirSync(dockerConfig);
    fs.writeFileSync(path.join(dockerConfig, "config.json"), '{"auths":{}}\n'); // buildah requires the file to exist
    const toolEnv: NodeJS.ProcessEnv = { DOCKER_CONFIG: dockerConfig };
    // The process and the in-process call each keep their own caches (input snapshots, the last
    // layer's deflate chunks), so each finds the previous round's layer, as a deploy after an edit does.
    const processEnv: NodeJS.ProcessEnv = { ...toolEnv, THINLAYER_CACHE_DIR: path.join(work, "cache-process") };
    const callerCacheDir = process.env.THINLAYER_CACHE_DIR;
    process.env.THINLAYER_CACHE_DIR = path.join(work, "cache-inproc");
    const reg = await startRegistry();
    const proxy = await startProxy(reg.host);
    const warm = await startDockerd();
    const proxies: StartedProxy[] = [proxy];
    try {
        // The ~200 MB base: incompressible data in a few layers, pushed once (straight to the registry).
        const baseDir = path.join(work, "base");
        const layers = [];
        for (let i = 0; i < BASE_LAYERS; i++) {
            const f = path.join(baseDir, `l${i}.bin`);
            writeRandom(f, BASE_LAYER_BYTES);
            layers.push([{ dest: `/data/layer${i}.bin`, type: "file" as const, source: f, mode: 0o644, uid: 0, gid: 0 }]);
        }
        layers.push([{ dest: "/bin/busybox", type: "file" as const, source: "/bin/busybox", mode: 0o755, uid: 0, gid: 0 }]);
        const direct = new RegistryClient(reg.host);
        const base = await pushScratchImage(direct, "bench/base", "v1", layers);
        fs.rmSync(baseDir, { recursive: true, force: true });
        const baseManifest = JSON.parse((await direct.getManifest("bench/base", base.digest)).bytes.toString()) as {
            layers: { digest: string; size: number }[];
        };
        const baseLayerBytes = baseManifest.layers.reduce((n, l) => n + l.size, 0);
        const baseSizes = new Map(baseManifest.layers.map((l) => [l.digest, l.size]));
        const baseRef = (host: string) => `${host}/bench/base@${base.digest}`;
        const baseHash = "e".repeat(64);

        let logOffset = 0;
        /** GETs of base-layer blobs (count, bytes) since the last call, from the registry's access log. */
        const fetchedBaseLayers = () => {
            const text = fs.readFileSync(reg.logFile, "utf8");
            const fresh = text.slice(logOffset);
            logOffset = text.length;
            let gets = 0;
            let bytes = 0;
            for (const l of fresh.split("\n")) {
                const m = /"GET \/v2\/[^ ]+\/blobs\/(sha256:[0-9a-f]{64}) HTTP/.exec(l);
                const size = m ? baseSizes.get(m[1]) : undefined;
                if (size !== undefined) {
                    gets++;
                    bytes += size;
                }
            }
            return { gets, bytes };
        };
        console.log(`base: ${mb(baseLayerBytes)} MB compressed in ${layers.length} layers (random data); ${ROUNDS} measured rounds (+1 warm-up) per app`);

        const LINK = Number(process.env.BENCH_LINK_MBPS ?? 50) * MB;
        const linkProxy = await startProxy(reg.host, { bytesPerSecond: LINK });
        proxies.push(linkProxy);
        // BENCH_LAYER_ONLY=source-lo,random-lo runs only those scenarios (for a quick look; a full run reports all).
        const only = (process.env.BENCH_LAYER_ONLY ?? "").split(",").filter(Boolean);
        const scenarios = [
            { kind: "random" as const, link: false },
            { kind: "source" as const, link: false },
            { kind: "source" as const, link: true },
        ].filter((x) => only.length === 0 || only.includes(`${x.kind}-${x.link ? "link" : "lo"}`));
        const summary: string[] = [];
        for (const { kind, link } of scenarios) {
            // Loopback through the counting proxy, or through one proxy simulating a LINK bytes/s network.
            const via = link ? linkProxy : proxy;
            const name = `${kind}-${link ? "link" : "lo"}`;
            // The ~20 MB app: incompressible bytes, or Python-like source text (compresses ~4x).
            const ctx = path.join(work, `app-${name}`);
            const writeApp = kind === "random" ? writeRandom : writeSource;
            const ext = kind === "random" ? "bin" : "py";
            for (let i = 0; i < APP_FILES; i++) writeApp(path.join(ctx, "app", `m${String(i).padStart(3, "0")}.${ext}`), APP_FILE_BYTES);
            fs.writeFileSync(
                path.join(ctx, "Dockerfile"),
                'ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nWORKDIR /srv\nCOPY app/ /srv/app/\nCMD ["/bin/busybox", "ls", "/srv/app"]\n',
            );
            const dockerfile = path.join(ctx, "Dockerfile");
            const scenario = `app: ${APP_FILES} ${kind === "random" ? "random (incompressible)" : "source-text"} files, ${mb(APP_FILES * APP_FILE_BYTES)} MB; ${link ? `over a simulated ${mb(LINK)} MB/s link (every tool through one pacing proxy)` : "loopback (through a counting proxy)"}`;
            console.log(`\n--- ${scenario} ---`);

            // The warm daemon holds the base under the very name the build uses (untimed).
            // (Asynchronously: a synchronous spawn would stall the proxy in this process.)
            await run(DOCKER, ["pull", "--quiet", baseRef(via.host)], { ...warm.env, ...toolEnv });
            fetchedBaseLayers();

            const results = Object.fromEntries(TOOLS.map((t) => [t.key, [] as Sample[]])) as Record<Tool, Sample[]>;
            let appLayer = 0;
            for (let round = 0; round <= ROUNDS; round++) {
                // An app-only change: one file edited.
                writeApp(path.join(ctx, "app", `m000.${ext}`), APP_FILE_BYTES);
                const ai = await computeAppInputs({ contextDir: ctx, dockerfile, buildArgs: {}, platform: PLATFORM, baseHash }, { cache: false });
                const expectTag = appTag(ai.hash);
                const sample: Partial<Record<Tool, Sample>> = {};
                const measure = async (key: Tool, f: () => Promise<void>) => {
                    fetchedBaseLayers();
                    via.reset();
                    const t0 = process.hrtime.bigint();
                    await f();
                    const s = seconds(t0);
                    const b = fetchedBaseLayers();
                    sample[key] = { s, up: via.counters.bytesUp, down: via.counters.bytesDown, baseGets: b.gets, baseBytes: b.bytes };
                };

                // thinlayer as the program runs it: a process.
                let cliResult: { action?: string; how?: string; digest?: string; attestation?: { bytesUploaded?: number } } = {};
                let cliStderr = "";
                await measure("process", async () => {
                    const line = ensureCommandLine(cliDir, {
                        image: "app",
                        context: ctx,
                        dockerfile,
                        repository: `${via.host}/bench/app-${kind}-cli`,
                        platform: PLATFORM,
                        baseRef: baseRef(via.host),
                        baseHash,
                        expectTag,
                    });
                    const out = await run("/bin/sh", ["-c", line], processEnv, (t) => (cliStderr += t), cliDir);
                    cliResult = JSON.parse(out) as typeof cliResult;
                });
                if (cliResult.action !== "built" || cliResult.how !== "daemonless")
                    throw new Error(`thinlayer process round did not build daemonless: ${JSON.stringify(cliResult)}`);
                // The provenance statement thinlayer attaches (BuildKit through `docker build` attaches none).
                (sample.process as Sample).attest = cliResult.attestation?.bytesUploaded ?? 0;

                // The same call inside this process (another repository, so the tag is new there).
                let digest = "";
                await measure("inproc", async () => {
                    const r = await ensureImage(
                        {
                            image: "app",
                            context: ctx,
                            dockerfile,
                            repository: `${via.host}/bench/app-${kind}`,
                            platform: PLATFORM,
                            expectTag,
                            baseRef: baseRef(via.host),
                            baseHash,
                        },
                        { log: () => undefined },
                    );
                    if (r.action !== "built" || r.how !== "daemonless") throw new Error(`in-process round did not build daemonless: ${JSON.stringify(r)}`);
                    digest = r.digest;
                });
                const m = JSON.parse((await direct.getManifest(`bench/app-${kind}`, digest)).bytes.toString()) as { layers: { size: number }[] };
                appLayer = m.layers[m.layers.length - 1].size;

                // BuildKit with the base in the local store (and its build cache from earlier rounds).
                await measure("bkWarm", () =>
                    buildkitBuildPush(warm, toolEnv, ctx, dockerfile, baseRef(via.host), `${via.host}/bench/app-${kind}-bk-warm:${name}${round}`),
                );

                // BuildKit on a brand-new daemon: nothing in its store (start and stop untimed).
                const fresh = await startDockerd();
                try {
                    await measure("bkEmpty", () =>
                        buildkitBuildPush(fresh, toolEnv, ctx, dockerfile, baseRef(via.host), `${via.host}/bench/app-${kind}-bk-empty:${name}${round}`),
                    );
                } finally {
                    await fresh.stop();
                }

                // buildah: fresh storage (no base layers cached locally), FROM base + COPY, push.
                const storage = buildahStorage();
                const tag = `${via.host}/bench/app-${kind}-buildah:${name}${round}`;
                const st = [
                    "--storage-driver",
                    "vfs",
                    "--root",
                    storage.env.THINLAYER_BUILDAH_ROOT as string,
                    "--runroot",
                    storage.env.THINLAYER_BUILDAH_RUNROOT as string,
                ];
                try {
                    await measure("buildah", async () => {
                        await run(
                            "buildah",
                            [
                                ...st,
                                "bud",
                                "--isolation",
                                "chroot",
                                "--platform",
                                PLATFORM,
                                "--tls-verify=false",
                                "--build-arg",
                                `BASE_IMAGE=${baseRef(via.host)}`,
                                "-f",
                                dockerfile,
                                "-t",
                                tag,
                                ctx,
                            ],
                            toolEnv,
                        );
                        await run("buildah", [...st, "push", "--tls-verify=false", tag, `docker://${tag}`], toolEnv);
                    });
                } finally {
                    storage.remove();
                }

                const label = round === 0 ? "warm-up" : `round ${round}`;
                console.log(`${label.padEnd(8)} ` + TOOLS.map((t) => `${t.key} ${(sample[t.key] as Sample).s.toFixed(2)} s`).join(" | "));
                // Where the process's time went, as ensure reports it (its last "time:" line).
                const phases = /time: (.*)/.exec(cliStderr)?.[1];
                if (phases) console.log(`         process phases: ${phases}`);
                if (round === 0) continue;
                for (const t of TOOLS) results[t.key].push(sample[t.key] as Sample);
            }
            const med = (k: Tool, f: (x: Sample) => number) => median(results[k].map(f));
            console.log("");
            console.log(`median of ${ROUNDS}                 seconds   uploaded MB   downloaded MB   base-layer GETs   base MB downloaded`);
            for (const t of TOOLS) {
                console.log(
                    `${t.label.padEnd(26)} ${med(t.key, (x) => x.s)
                        .toFixed(2)
                        .padStart(
                            7,
                        )}   ${mb(med(t.key, (x) => x.up)).padStart(11)}   ${mb(med(t.key, (x) => x.down)).padStart(13)}   ${String(med(t.key, (x) => x.baseGets)).padStart(15)}   ${mb(med(t.key, (x) => x.baseBytes)).padStart(18)}`,
                );
            }
            const p = med("process", (x) => x.s);
            const ratio = (k: Tool) => med(k, (x) => x.s) / p;
            const warmX = ratio("bkWarm");
            const emptyX = ratio("bkEmpty");
            const upP = med("process", (x) => x.up);
            const upBk = Math.min(
                med("bkWarm", (x) => x.up),
                med("bkEmpty", (x) => x.up),
            );
            console.log(`compressed app layer: ${mb(appLayer)} MB`);
            console.log(`thinlayer process vs BuildKit warm:  ${warmX.toFixed(1)}x (target >= 10x) ${warmX >= 10 ? "OK" : "MISSED"}`);
            console.log(`thinlayer process vs BuildKit empty: ${emptyX.toFixed(1)}x (target >= 20x) ${emptyX >= 20 ? "OK" : "MISSED"}`);
            console.log(
                `thinlayer process vs buildah:        ${ratio("buildah").toFixed(1)}x; in-process vs buildah ${(med("buildah", (x) => x.s) / med("inproc", (x) => x.s)).toFixed(1)}x`,
            );
            console.log(
                `uploaded, thinlayer process / BuildKit: ${mb(upP)} / ${mb(upBk)} MB = ${(upP / upBk).toFixed(3)} (target <= 1) ${upP <= upBk ? "OK" : "MISSED"}`,
            );
            const att = med("process", (x) => x.attest ?? 0);
            const upImage = med("process", (x) => x.up - (x.attest ?? 0));
            console.log(
                `  of which the provenance attestation ${(att / 1024).toFixed(1)} KiB; the image alone ${mb(upImage)} / ${mb(upBk)} MB = ${(upImage / upBk).toFixed(4)} ${upImage <= upBk ? "OK" : "MISSED"}`,
            );
            console.log(
                `thinlayer base-layer bytes downloaded: ${mb(med("process", (x) => x.baseBytes))} MB ${med("process", (x) => x.baseGets) === 0 ? "OK" : "MISSED"}`,
            );
            summary.push(
                `${name}: process ${p.toFixed(2)} s, BuildKit warm ${med("bkWarm", (x) => x.s).toFixed(2)} s (${warmX.toFixed(1)}x), BuildKit empty ${med("bkEmpty", (x) => x.s).toFixed(2)} s (${emptyX.toFixed(1)}x), buildah ${med("buildah", (x) => x.s).toFixed(2)} s`,
            );
        }
        console.log(`\nsummary:\n  ${summary.join("\n  ")}`);
    } finally {
        await warm.stop();
        for (const p of proxies) await p.stop();
        await reg.stop();
        fs.rmSync(work, { recursive: true, force: true });
        // The benchmarks that follow in this process (and their children) use the caller's cache.
        if (callerCacheDir === undefined) delete process.env.THINLAYER_CACHE_DIR;
        else process.env.THINLAYER_CACHE_DIR = callerCacheDir;
    }
}
