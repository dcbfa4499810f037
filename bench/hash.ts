/**
 * `npm run bench hash`: thinlayer's content hashing against the shell recipes it replaces, on a
 * generated tree of 20,000 files / ~450 MB (made once under bench/.work, reused; a git repo with
 * every file added, so `git ls-files -s` has an index to read).
 *
 * Every variant runs in the same round, interleaved, and medians are printed side by side:
 *   - thinlayer cold: no stat cache, every file read and hashed (sha256)
 *   - thinlayer warm: the input snapshot from the last run is still valid (one lstat per input
 *     file, checked by the native accelerator when it is built), nothing walked or read; also
 *     with the fs.lstatSync fallback (THINLAYER_NATIVE=0) side by side
 *   - find -exec md5sum {} \; | sort | md5sum   (the seed-003 CI recipe; fewer rounds: it is slow)
 *   - find -print0 | xargs -0 md5sum | sort | md5sum   (batched)
 *   - git ls-files -s   (the floor: reads the index, no file at all)
 * Shell variants are timed as `sh -c` child processes (wall clock). thinlayer is timed two ways:
 * as a child process (`node --import tsx`, so Node + TypeScript loader startup included) and
 * in-process (the time of the hashing call itself, what a long-lived caller such as the Pulumi
 * program pays). The page cache is warm for every variant (nothing here can drop it). Each
 * measurement starts after a full GC of this process and a 25 ms pause (settle()).
 *
 * Env: THINLAYER_BENCH_ROUNDS (default 5), THINLAYER_BENCH_EXEC_ROUNDS (default 1),
 *      THINLAYER_BENCH_DIR (default bench/.work/hash-tree), THINLAYER_BENCH_FILES (default 20000).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { spawnSync } from "node:child_process";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { setTimeout as sleep } from "node:timers/promises";
import { computeInputs } from "../lib/hashing/inputs";
import { resetCacheForTests, type HashStats } from "../lib/hashing/filehash";
import { statcheckImpl } from "../lib/hashing/statcheck";
import { resetFingerprintForTests } from "../lib/hashing/snapshot";

const ROOT = path.resolve(__dirname, "..");
const TREE = path.resolve(process.env.THINLAYER_BENCH_DIR ?? path.join(ROOT, "bench/.work/hash-tree"));
const FILES = Number(process.env.THINLAYER_BENCH_FILES ?? "20000");
const ROUNDS = Number(process.env.THINLAYER_BENCH_ROUNDS ?? "5");
const EXEC_ROUNDS = Number(process.env.THINLAYER_BENCH_EXEC_ROUNDS ?? "1");
const SPEC = `v1 files=${FILES}`;
const CACHE = path.join(path.dirname(TREE), "hash-cache");

/** Sizes: mostly small source-like files, some larger assets; ~450 MB at 20,000 files. */
function sizeOf(i: number): number {
    if (i % 10 === 0) return 64 * 1024 + ((i * 7919) % (100 * 1024)); // 10%: 64-164 KiB
    return 1024 + ((i * 104729) % (23 * 1024)); // 90%: 1-24 KiB
}

function makeTree(): void {
    const marker = path.join(TREE, ".bench-complete");
    if (fs.existsSync(marker) && fs.readFileSync(marker, "utf8") === SPEC) {
        console.log(`tree: reusing ${TREE}`);
        return;
    }
    console.log(`tree: generating ${FILES} files under ${TREE} (once) ...`);
    fs.rmSync(TREE, { recursive: true, force: true });
    fs.mkdirSync(TREE, { recursive: true });
    const pool = randomBytes(8 * 1024 * 1024);
    let bytes = 0;
    for (let i = 0; i < FILES; i++) {
        const dir = path.join(TREE, "src", `pkg${String(i % 20).padStart(2, "0")}`, `mod${String(Math.floor(i / 20) % 10)}`);
        if (i < 200) fs.mkdirSync(dir, { recursive: true });
        const size = sizeOf(i);
        const off = (i * 4099) % (pool.length - size);
        const content = Buffer.concat([Buffer.from(`file ${i}\n`), pool.subarray(off, off + size)]);
        fs.writeFileSync(path.join(dir, `f${i}.dat`), content);
        bytes += content.length;
    }
    fs.writeFileSync(path.join(TREE, "Dockerfile"), "FROM scratch\nCOPY . /data/\n");
    fs.writeFileSync(path.join(TREE, ".dockerignore"), ".git\n.bench-complete\n");
    const git = (...args: string[]) => {
        const r = spawnSync("git", ["-c", "core.compression=0", "-c", "core.looseCompression=0", ...args], {
            cwd: TREE,
            encoding: "utf8",
            env: { ...process.env, GIT_AUTHOR_NAME: "bench", GIT_AUTHOR_EMAIL: "b@b", GIT_COMMITTER_NAME: "bench", GIT_COMMITTER_EMAIL: "b@b" },
        });
        if (r.status !== 0) throw new Error(`git ${args.join(" ")}: ${r.stderr}`);
    };
    git("init", "-q");
    git("add", "-A");
    git("commit", "-qm", "bench tree");
    fs.writeFileSync(marker, SPEC);
    console.log(`tree: ${FILES} files, ${(bytes / 1e6).toFixed(0)} MB, committed to git`);
}

/** A program started directly (no shell), output discarded: the fastest way to time a command. */
function direct(cmd: string, args: string[]): number {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(cmd, args, { cwd: TREE, stdio: ["ignore", "ignore", "pipe"] });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")}: exit ${r.status}: ${r.stderr.toString()}`);
    return ms;
}

function sh(cmd: string): number {
    const t0 = process.hrtime.bigint();
    const r = spawnSync("sh", ["-c", cmd], { cwd: cmd.includes("--import tsx") ? ROOT : TREE, stdio: ["ignore", "pipe", "pipe"], maxBuffer: 64 * 1024 * 1024 });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (r.status !== 0) throw new Error(`${cmd}: exit ${r.status}: ${r.stderr.toString()}`);
    return ms;
}

interface ChildResult {
    ms: number;
    hash: string;
    files: number;
    bytes: number;
    maxRssKiB: number;
    hits: number;
    misses: number;
    bytesRead: number;
}

function child(mode: "cache" | "nocache", dockerfile?: string): { wall: number; r: ChildResult } {
    const t0 = process.hrtime.bigint();
    const p = spawnSync(process.execPath, ["--import", "tsx", path.join(ROOT, "bench/hash-child.ts"), TREE, mode, ...(dockerfile ? [dockerfile] : [])], {
        cwd: ROOT,
        encoding: "utf8",
        env: { ...process.env, THINLAYER_CACHE_DIR: CACHE },
    });
    const wall = Number(process.hrtime.bigint() - t0) / 1e6;
    if (p.status !== 0) throw new Error(`hash-child: ${p.stderr}`);
    return { wall, r: JSON.parse(p.stdout) as ChildResult };
}

async function inProcess(cache: boolean, native = true): Promise<{ ms: number; hash: string; stats: HashStats }> {
    process.env.THINLAYER_CACHE_DIR = CACHE;
    if (native) delete process.env.THINLAYER_NATIVE;
    else process.env.THINLAYER_NATIVE = "0";
    resetCacheForTests(); // load the cache from disk each time, as a new process would
    resetFingerprintForTests();
    const stats: HashStats = { hits: 0, misses: 0, bytesRead: 0 };
    try {
        const t0 = process.hrtime.bigint();
        const r = await computeInputs(
            { role: "base", contextDir: TREE, dockerfile: path.join(TREE, "Dockerfile"), buildArgs: {}, platform: "linux/amd64" },
            { cache },
            stats,
        );
        // Use the file list, as `thinlayer plan` and the Pulumi program do (a hit builds it on first use).
        if (r.files.length !== stats.hits + stats.misses) throw new Error("file count and cache counters disagree");
        return { ms: Number(process.hrtime.bigint() - t0) / 1e6, hash: r.hash, stats };
    } finally {
        delete process.env.THINLAYER_NATIVE;
    }
}

/**
 * Before each measurement: collect this process's garbage (so an in-process call does not pay
 * for the previous variant's, as a fresh `thinlayer` process would not) and pause 25 ms so
 * the previous variant's exiting processes and writeback are done. The same for every variant.
 */
const gc = (() => {
    setFlagsFromString("--expose-gc");
    return runInNewContext("gc") as () => void;
})();
async function settle(): Promise<void> {
    gc();
    await sleep(25);
}

const median = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

export async function main(): Promise<void> {
    makeTree();
    console.log(`machine: ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? "?"}), node ${process.version}; rounds: ${ROUNDS} (find -exec: ${EXEC_ROUNDS})`);
    const impl = statcheckImpl();
    console.log(`warm check: ${impl.impl === "native" ? "native (thinlayer-statcheck)" : `fs.lstatSync fallback: ${impl.reason ?? "?"}`}`);
    // Prime the page cache and the stat cache (racy window passes: the tree is older than 1 s).
    sh("cat $(git ls-files) > /dev/null 2>&1 || true");
    const prime = child("cache");
    const times: Record<string, number[]> = {};
    const add = (k: string, v: number) => (times[k] ??= []).push(v);
    let rss = 0;
    let coldBytes = 0;
    const hashes = new Set<string>([prime.r.hash]);
    const warmHits: number[] = [];
    const warmSnapshot: boolean[] = [];
    for (let round = 0; round < ROUNDS; round++) {
        // Every measurement starts from the same quiet state (see settle()).
        await settle();
        const cold = child("nocache");
        add("thinlayer cold (process)", cold.wall);
        await settle();
        add("thinlayer cold (in-process call)", (await inProcess(false)).ms);
        rss = Math.max(rss, cold.r.maxRssKiB);
        coldBytes = cold.r.bytesRead;
        hashes.add(cold.r.hash);
        await settle();
        const warm = child("cache");
        add("thinlayer warm (process)", warm.wall);
        warmHits.push(warm.r.hits);
        hashes.add(warm.r.hash);
        await settle();
        const wip = await inProcess(true);
        add("thinlayer warm (in-process call)", wip.ms);
        hashes.add(wip.hash);
        warmSnapshot.push(wip.stats.snapshot === true);
        await settle();
        const wjs = await inProcess(true, false);
        add("thinlayer warm, fs.lstatSync check (in-process)", wjs.ms);
        hashes.add(wjs.hash);
        warmSnapshot.push(wjs.stats.snapshot === true);
        await settle();
        add("find | xargs -0 md5sum | sort | md5sum", sh("find . -type f -not -path './.git/*' -print0 | xargs -0 md5sum | sort | md5sum"));
        await settle();
        add("git ls-files -s", sh("git ls-files -s > /dev/null"));
        await settle();
        add("git ls-files -s (spawned directly, no shell)", direct("git", ["ls-files", "-s"]));
        await settle();
        add("(startup only: node -e 0)", sh(`"${process.execPath}" -e 0`));
        await settle();
        add("(startup only: node --import tsx -e 0)", sh(`"${process.execPath}" --import tsx -e 0`));
        await settle();
        if (round < EXEC_ROUNDS)
            add("find -exec md5sum {} \\; | sort | md5sum", sh("find . -type f -not -path './.git/*' -exec md5sum {} \\; | sort | md5sum"));
    }
    if (hashes.size !== 1) throw new Error(`hash differed between runs/modes: ${[...hashes].join(", ")}`);
    const rows = Object.entries(times).map(([k, v]) => [k, median(v), v.length] as const);
    const w = Math.max(...rows.map((r) => r[0].length));
    console.log(`\n${"variant".padEnd(w)}  median ms  runs`);
    for (const [k, m, n] of rows) console.log(`${k.padEnd(w)}  ${m.toFixed(1).padStart(9)}  ${String(n).padStart(4)}`);
    const m = (k: string) => median(times[k]);
    const batched = m("find | xargs -0 md5sum | sort | md5sum");
    const floor = m("git ls-files -s");
    console.log(`\nratios (target: cold <= 1.2x batched md5sum; warm <= 4x git ls-files -s):`);
    console.log(
        `  cold / batched md5sum: process ${(m("thinlayer cold (process)") / batched).toFixed(2)}x, in-process ${(m("thinlayer cold (in-process call)") / batched).toFixed(2)}x`,
    );
    console.log(
        `  warm / git ls-files -s: in-process ${(m("thinlayer warm (in-process call)") / floor).toFixed(2)}x (${impl.impl} check), with the fs.lstatSync check ${(m("thinlayer warm, fs.lstatSync check (in-process)") / floor).toFixed(2)}x`,
    );
    const floorDirect = m("git ls-files -s (spawned directly, no shell)");
    console.log(
        `  warm / git ls-files -s spawned without a shell: in-process ${(m("thinlayer warm (in-process call)") / floorDirect).toFixed(2)}x (${impl.impl} check)`,
    );
    console.log(
        `  warm / git ls-files -s as processes: ${(m("thinlayer warm (process)") / floor).toFixed(2)}x (bounded below by Node's own startup: node -e 0 alone is ${(m("(startup only: node -e 0)") / floor).toFixed(2)}x)`,
    );
    if (warmSnapshot.some((x) => !x)) throw new Error("a warm in-process run was not served by its snapshot");
    console.log(`  every warm in-process run was a snapshot hit`);
    console.log(`  warm runs re-read nothing: hits per run ${[...new Set(warmHits)].join(",")} of ${prime.r.files} files`);
    // Memory: the same process on 1/20 of the tree. Bounded memory means about the same peak.
    const small = path.join(path.dirname(TREE), "Dockerfile.small");
    fs.writeFileSync(small, "FROM scratch\nCOPY src/pkg00 /x/\n");
    const smallRss = Math.max(...[0, 1, 2].map(() => child("nocache", small).r.maxRssKiB));
    const smallRun = child("nocache", small).r;
    console.log(`memory (peak RSS of a cold thinlayer process, Node + tsx baseline included):`);
    console.log(`  whole tree: ${(rss / 1024).toFixed(0)} MiB while reading ${(coldBytes / 1e6).toFixed(0)} MB (${prime.r.files} files)`);
    console.log(`  1/20 tree:  ${(smallRss / 1024).toFixed(0)} MiB while reading ${(smallRun.bytesRead / 1e6).toFixed(0)} MB (${smallRun.files} files)`);
    console.log(`  bounded by workers x 1 MiB read buffer + per-file metadata, not by bytes read`);
    console.log(`hash (same in every run and mode): ${prime.r.hash}`);
}
