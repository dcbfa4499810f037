/**
 * Loads index.ts the way `pulumi up` does: through ts-node with type-checking (this file is run as
 * `node -r ts-node/register tests/program/load-under-ts-node.ts`, with PULUMI_CONFIG set), under
 * the program mocks, and prints the stack outputs as JSON.
 */
import * as pulumi from "@pulumi/pulumi";
import { programMocks } from "../helpers/mocks";

async function main(): Promise<void> {
    await pulumi.runtime.setMocks(programMocks(), "thinlayer", process.env.THINLAYER_STACK ?? "uat", false, "organization");
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const program = require("../../index") as () => Promise<Record<string, unknown>>;
    const outputs = await pulumi.runtime.runInPulumiStack(() => program());
    await pulumi.runtime.disconnect(); // let every mocked registration finish, as the engine would
    process.stdout.write(JSON.stringify(outputs) + "\n");
}

main().then(
    () => process.exit(0),
    (e: unknown) => {
        process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
        process.exit(1);
    },
);
