/**
 * `npm run bench [name...]`: runs the benchmarks (all by default) and prints their figures.
 * Benchmarks are never tests: they print medians and ratios measured side by side in one run.
 */
const BENCHES: Record<string, () => Promise<{ main(): Promise<void> }>> = {
    hash: () => import("./hash"),
    layer: () => import("./layer"),
    e2e: () => import("./e2e"),
};

async function main(): Promise<void> {
    const names = process.argv.slice(2);
    const chosen = names.length ? names : Object.keys(BENCHES);
    for (const n of chosen) {
        const load = BENCHES[n];
        if (!load) throw new Error(`unknown benchmark ${JSON.stringify(n)}; expected one of ${Object.keys(BENCHES).join(", ")}`);
        console.log(`\n=== bench: ${n} ===`);
        await (await load()).main();
    }
}

main().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
});
