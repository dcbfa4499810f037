/**
 * `npm run bench e2e`: the wall time of `pulumi up` under the real engine, on the e2e world
 * (tests/helpers/e2e-world.ts: a copy of this project, a local registry, a local Kubernetes API with
 * kwok nodes), for four kinds of deploy, interleaved round by round so they share the machine's
 * noise:
 *
 *   no change      pulumi up with nothing edited
 *   app-only       one line appended to an app file
 *   requirements   one line appended to requirements/base.txt (the base image is rebuilt)
 *   rollback       thinlayer rollback --steps 1, then pulumi up (and --clear + up after, untimed)
 *
 * Each `pulumi up` is split, from the arrival time of each engine event on `pulumi up --json`'s
 * stdout (the events' own timestamps are whole seconds):
 *
 *   ensure         the ensure commands, first pre-event to outputs event of each (the build)
 *   cluster wait   the Kubernetes resources, pre-event to outputs event (the provider awaits
 *                  Jobs and rollouts), excluding time already counted as ensure
 *   evaluation     from the CLI's start to the first resource registration after the stack
 *                  (node start-up, the TypeScript load, config and the plan)
 *   engine         the rest: CLI start-up, plugin start, state writes, diffs
 *
 * Targets: a no-change up runs zero ensure commands; an app-only up takes at most 15 s, of which the
 * build at most 1 s. Rounds: BENCH_E2E_ROUNDS (default 3).
 */
import { spawnSync } from "node:child_process";
import { editApp, ensureRuns, initStack, startWorld, type World } from "../tests/helpers/e2e-world";
import type { EngineEvent } from "../tests/helpers/pulumi";

const ROUNDS = Number(process.env.BENCH_E2E_ROUNDS ?? 3);
const STACK = "e2e-uat";

interface Split {
    total: number;
    ensure: number;
    cluster: number;
    evaluation: number;
    engine: number;
    ensureRuns: number;
    buildSeconds: number;
}

/** One `pulumi up --json`, each engine event stamped with the ms it arrived at (from the start). */
async function timedUp(world: World, extra: string[] = []): Promise<{ split: Split; events: EngineEvent[] }> {
    const arrived = new Map<number, number>();
    const started = Date.now();
    const { result: r, events } = await world.project.up(STACK, extra, { onEvent: (e) => arrived.set(e.sequence, Date.now() - started) });
    const total = Date.now() - started;
    if (r.code !== 0) throw new Error(`pulumi up failed:\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-2000)}`);
    const at = (e: EngineEvent) => arrived.get(e.sequence) ?? total;
    const spans = (pred: (type: string) => boolean): [number, number][] => {
        const open = new Map<string, number>();
        const out: [number, number][] = [];
        for (const e of events) {
            const pre = e.resourcePreEvent?.metadata;
            const done = e.resOutputsEvent?.metadata;
            if (pre && pred(pre.type)) open.set(`${pre.op}:${pre.urn}`, at(e));
            if (done && pred(done.type)) {
                const s = open.get(`${done.op}:${done.urn}`);
                if (s !== undefined) out.push([s, at(e)]);
            }
        }
        return out;
    };
    const union = (list: [number, number][], minus: [number, number][] = []): number => {
        let ms = 0;
        for (let t = 0; t < total; t += 5) {
            const inside = list.some(([a, b]) => t >= a && t < b) && !minus.some(([a, b]) => t >= a && t < b);
            if (inside) ms += 5;
        }
        return ms;
    };
    const ensureSpans = spans((t) => t === "command:local:Command");
    const kubeSpans = spans((t) => t.startsWith("kubernetes:") && t !== "pulumi:providers:kubernetes");
    const ensure = union(ensureSpans);
    const cluster = union(kubeSpans, ensureSpans);
    const firstResource = events.find((e) => {
        const m = e.resourcePreEvent?.metadata;
        return m !== undefined && m.type !== "pulumi:pulumi:Stack";
    });
    const evaluation = firstResource ? at(firstResource) : total;
    const runs = ensureRuns(events);
    const buildSeconds = [...runs.values()].reduce((s, x) => s + ((x as { seconds?: number }).seconds ?? 0), 0);
    return {
        events,
        split: { total, ensure, cluster, evaluation, engine: Math.max(0, total - ensure - cluster - evaluation), ensureRuns: runs.size, buildSeconds },
    };
}

const median = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

function thinlayer(world: World, args: string[]): void {
    const r = spawnSync("node", ["bin/thinlayer.js", ...args], { cwd: world.dir, env: world.project.env, encoding: "utf8" });
    if (r.status !== 0) throw new Error(`thinlayer ${args.join(" ")}: ${r.stderr}`);
}

export async function main(): Promise<void> {
    const world = await startWorld();
    const results: Record<string, Split[]> = { "no change": [], "app-only": [], requirements: [], rollback: [] };
    try {
        await initStack(world, STACK);
        console.log("first pulumi up (untimed: builds the base, creates everything)...");
        await timedUp(world);
        for (let round = 1; round <= ROUNDS; round++) {
            results["no change"].push((await timedUp(world)).split);
            editApp(world, "records/views.py", `# bench round ${round}`);
            results["app-only"].push((await timedUp(world)).split);
            editApp(world, "requirements/base.txt", `# bench round ${round}`);
            results.requirements.push((await timedUp(world)).split);
            thinlayer(world, ["rollback", "--stack", STACK, "--steps", "1"]);
            results.rollback.push((await timedUp(world)).split);
            thinlayer(world, ["rollback", "--stack", STACK, "--clear"]);
            await timedUp(world);
            console.log(`round ${round}/${ROUNDS} done`);
        }
    } finally {
        await world.stop();
    }
    const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
    console.log(`\npulumi up under the real engine, medians of ${ROUNDS} interleaved rounds:\n`);
    console.log("| deploy | total | engine | evaluation | ensure | cluster wait | ensure runs | build (ensure's own seconds) |");
    console.log("|---|---|---|---|---|---|---|---|");
    for (const [name, xs] of Object.entries(results)) {
        const m = (k: keyof Split) => median(xs.map((x) => x[k]));
        console.log(
            `| ${name} | ${s(m("total"))} | ${s(m("engine"))} | ${s(m("evaluation"))} | ${s(m("ensure"))} | ${s(m("cluster"))} | ${m("ensureRuns")} | ${m("buildSeconds").toFixed(2)} s |`,
        );
    }
    const nc = results["no change"];
    const app = results["app-only"];
    console.log(
        `\ntargets: no-change ensure runs = ${median(nc.map((x) => x.ensureRuns))} (target 0); ` +
            `app-only total ${s(median(app.map((x) => x.total)))} (target <= 15 s), build ${median(app.map((x) => x.buildSeconds)).toFixed(2)} s (target <= 1 s)`,
    );
}
