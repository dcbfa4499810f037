/**
 * `npm run bench layer`: an app-only update of a ~20 MB app on a ~200 MB base, pushed to one local
 * registry, side by side in one run — for two apps: incompressible random files (the worst case for
 * the network, the best for the layer writer, which stores rather than deflates them) and
 * Python-like source text (which must be deflated):
 *
 *   daemonless  thinlayer ensure app (reads the base manifest + config, writes one layer, uploads it)
 *   buildah     FROM base + COPY, then push — with fresh buildah storage every round, so no base
 *               layer is cached locally (as on a CI runner)
 *
 * Bytes: daemonless by its registry client's counters; buildah through a loopback counting proxy
 * (in this process; buildah is a separate process). Base-layer blob GETs of both are counted from
 * the registry's own access log. Prints medians.
 * Targets: daemonless >= 10x faster; uploaded <= 1.05x the compressed app layer; 0 base-layer bytes
 * downloaded.
 */
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ensureImage } from "../lib/ensure";
import { appTag, computeAppInputs } from "../lib/plan";
import { RegistryClient } from "../lib/registry/client";
import { buildahStorage, pushScratchImage } from "../tests/helpers/images";
import { startProxy, startRegistry } from "../tests/helpers/registry";

const MB = 1024 * 1024;
const BASE_LAYERS = 4;
const BASE_LAYER_BYTES = 50 * MB;
const APP_FILES = 200;
const APP_FILE_BYTES = 100 * 1024; // 200 x 100 KiB = ~20 MB
const ROUNDS = Number(process.env.BENCH_LAYER_ROUNDS ?? 3);
const PLATFORM = "linux/amd64";

function writeRandom(file: string, bytes: number): void {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const fd = fs.openSync(file, "w");
    for (let left = bytes; left > 0; left -= MB) fs.writeSync(fd, randomBytes(Math.min(MB, left)));
    fs.closeSync(fd);
}

const WORDS = ["def", "return", "self", "request", "model", "patient", "record", "import", "from", "class", "if", "else", "for", "in", "None", "True", "queryset", "render", "context", "field"];

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

/** Runs a command asynchronously: the counting proxy lives in this process and must keep serving. */
function run(cmd: string, args: string[]): Promise<void> {
    return new Promise((resolve, reject) => {
        const p = spawn(cmd, args, { stdio: ["ignore", "ignore", "pipe"] });
        let err = "";
        p.stderr.on("data", (c: Buffer) => {
            err = (err + c.toString("utf8")).slice(-4000);
        });
        p.on("error", reject);
        p.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(" ")} failed (${code}): ${err}`))));
    });
}

const mb = (n: number) => (n / MB).toFixed(2);

export async function main(): Promise<void> {
    for (const tool of ["docker-registry", "buildah"]) {
        if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) throw new Error(`bench layer needs ${tool} (apt-get install -y docker-registry buildah)`);
    }
    const work = fs.mkdtempSync(path.join(os.tmpdir(), "thinlayer-bench-layer-"));
    const reg = await startRegistry();
    const proxy = await startProxy(reg.host);
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
        const baseLayerBytes = (JSON.parse((await direct.getManifest("bench/base", base.digest)).bytes.toString()) as { layers: { size: number }[] }).layers.reduce((n, l) => n + l.size, 0);
        const baseRef = (host: string) => `${host}/bench/base@${base.digest}`;
        const baseHash = "e".repeat(64);

        const baseLayerDigests = new Set(
            (JSON.parse((await direct.getManifest("bench/base", base.digest)).bytes.toString()) as { layers: { digest: string }[] }).layers.map((l) => l.digest),
        );
        let logOffset = 0;
        /** GETs of base-layer blobs since the last call, from the registry's access log. */
        const fetchedBaseLayers = () => {
            const text = fs.readFileSync(reg.logFile, "utf8");
            const fresh = text.slice(logOffset);
            logOffset = text.length;
            return fresh.split("\n").filter((l) => /"GET \/v2\/[^ ]+\/blobs\/sha256:[0-9a-f]{64} HTTP/.test(l) && [...baseLayerDigests].some((d) => l.includes(d))).length;
        };
        console.log(`base: ${mb(baseLayerBytes)} MB compressed in ${layers.length} layers (random data); ${ROUNDS} measured rounds (+1 warm-up) per app`);

        const LINK = Number(process.env.BENCH_LINK_MBPS ?? 50) * MB;
        const linkProxy = await startProxy(reg.host, { bytesPerSecond: LINK });
        const scenarios = [
            { kind: "random" as const, link: false },
            { kind: "source" as const, link: false },
            { kind: "source" as const, link: true },
        ];
        for (const { kind, link } of scenarios) {
            // Loopback, or both sides through one proxy simulating a LINK bytes/s network.
            const via = link ? linkProxy : proxy;
            const dlHost = link ? linkProxy.host : reg.host;
            // The ~20 MB app: incompressible bytes, or Python-like source text (compresses ~4x).
            const ctx = path.join(work, `app-${kind}-${link ? "link" : "lo"}`);
            const writeApp = kind === "random" ? writeRandom : writeSource;
            for (let i = 0; i < APP_FILES; i++) writeApp(path.join(ctx, "app", `m${String(i).padStart(3, "0")}.${kind === "random" ? "bin" : "py"}`), APP_FILE_BYTES);
            fs.writeFileSync(path.join(ctx, "Dockerfile"), "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nWORKDIR /srv\nCOPY app/ /srv/app/\nCMD [\"/bin/busybox\", \"ls\", \"/srv/app\"]\n");
            const dockerfile = path.join(ctx, "Dockerfile");
            console.log(`\n--- app: ${APP_FILES} ${kind === "random" ? "random (incompressible)" : "source-text"} files, ${mb(APP_FILES * APP_FILE_BYTES)} MB; ${link ? `over a simulated ${mb(LINK)} MB/s link (both sides through one pacing proxy)` : "loopback"} ---`);

            const results: Record<"daemonless" | "buildah", { s: number[]; up: number[]; down: number[]; baseFetches: number[] }> = {
                daemonless: { s: [], up: [], down: [], baseFetches: [] },
                buildah: { s: [], up: [], down: [], baseFetches: [] },
            };
            let appLayer = 0;
            for (let round = 0; round <= ROUNDS; round++) {
                // An app-only change: one file edited.
                writeApp(path.join(ctx, "app", `m000.${kind === "random" ? "bin" : "py"}`), APP_FILE_BYTES);

                // daemonless: straight to the registry, bytes from its client's counters.
                fetchedBaseLayers();
                const ai = await computeAppInputs({ contextDir: ctx, dockerfile, buildArgs: {}, platform: PLATFORM, baseHash }, { cache: false });
                let t0 = process.hrtime.bigint();
                const r = await ensureImage({ image: "app", context: ctx, dockerfile, repository: `${dlHost}/bench/app-${kind}`, platform: PLATFORM, expectTag: appTag(ai.hash), baseRef: baseRef(dlHost), baseHash }, { log: () => undefined });
                const dlSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
                if (r.action !== "built" || r.how !== "daemonless") throw new Error(`daemonless round did not build: ${JSON.stringify(r)}`);
                const m = JSON.parse((await direct.getManifest(`bench/app-${kind}`, r.digest)).bytes.toString()) as { layers: { size: number }[] };
                appLayer = m.layers[m.layers.length - 1].size;
                const dl = { s: dlSeconds, up: r.bytesUploaded, down: r.bytesDownloaded, base: fetchedBaseLayers() };

                // buildah: fresh storage (no base layers cached locally), FROM base + COPY, push.
                via.reset();
                const storage = buildahStorage();
                const tag = `${via.host}/bench/app-${kind}-buildah:${link ? "link" : "lo"}${round}`;
                const st = ["--storage-driver", "vfs", "--root", storage.env.THINLAYER_BUILDAH_ROOT as string, "--runroot", storage.env.THINLAYER_BUILDAH_RUNROOT as string];
                t0 = process.hrtime.bigint();
                await run("buildah", [...st, "bud", "--isolation", "chroot", "--platform", PLATFORM, "--tls-verify=false", "--build-arg", `BASE_IMAGE=${baseRef(via.host)}`, "-f", dockerfile, "-t", tag, ctx]);
                await run("buildah", [...st, "push", "--tls-verify=false", tag, `docker://${tag}`]);
                const bhSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
                storage.remove();
                const bh = { s: bhSeconds, up: via.counters.bytesUp, down: via.counters.bytesDown, base: fetchedBaseLayers() };
                const label = round === 0 ? "warm-up" : `round ${round}`;
                console.log(
                    `${label.padEnd(8)} daemonless ${dl.s.toFixed(2)} s up ${mb(dl.up)} MB down ${mb(dl.down)} MB base-layer GETs ${dl.base} | buildah ${bh.s.toFixed(2)} s up ${mb(bh.up)} MB down ${mb(bh.down)} MB base-layer GETs ${bh.base}`,
                );
                if (round === 0) continue;
                for (const [k, v] of [
                    ["daemonless", dl],
                    ["buildah", bh],
                ] as const) {
                    results[k].s.push(v.s);
                    results[k].up.push(v.up);
                    results[k].down.push(v.down);
                    results[k].baseFetches.push(v.base);
                }
            }
            const d = results.daemonless;
            const b = results.buildah;
            console.log("");
            console.log(`median of ${ROUNDS}           seconds   uploaded MB   downloaded MB   base-layer blob GETs`);
            console.log(`daemonless (thinlayer)  ${median(d.s).toFixed(2).padStart(7)}   ${mb(median(d.up)).padStart(11)}   ${mb(median(d.down)).padStart(13)}   ${median(d.baseFetches)}`);
            console.log(`buildah (FROM+COPY)     ${median(b.s).toFixed(2).padStart(7)}   ${mb(median(b.up)).padStart(11)}   ${mb(median(b.down)).padStart(13)}   ${median(b.baseFetches)}`);
            const speedup = median(b.s) / median(d.s);
            const upRatio = median(d.up) / appLayer;
            console.log(`compressed app layer: ${mb(appLayer)} MB`);
            console.log(`speed-up daemonless vs buildah: ${speedup.toFixed(1)}x (target >= 10x) ${speedup >= 10 ? "OK" : "MISSED"}`);
            console.log(`daemonless uploaded / app layer: ${upRatio.toFixed(3)} (target <= 1.05) ${upRatio <= 1.05 ? "OK" : "MISSED"}`);
            console.log(`daemonless base-layer bytes downloaded: ${median(d.baseFetches) === 0 ? "0" : "some"} (downloaded total ${(median(d.down) / 1024).toFixed(1)} KiB: manifest + config) ${median(d.baseFetches) === 0 ? "OK" : "MISSED"}`);
        }
        await linkProxy.stop();
    } finally {
        await proxy.stop();
        await reg.stop();
        fs.rmSync(work, { recursive: true, force: true });
    }
}
