/**
 * `thinlayer` CLI: a thin dispatcher over lib/. Each subcommand lives in cli/<name>.ts and
 * exports `run(argv): Promise<number>` (the exit code).
 */
import { ThinlayerError } from "../lib/errors";
import { takeHandedOverCaCerts } from "../lib/oci/trust";

const USAGE = `usage: thinlayer <command> [options]

commands:
  plan      show what a deploy would build and why (offline, no credentials)
  ensure    make sure an image exists in the registry: reuse it, or build and push it
  rollback  pin a stack to an earlier release, or clear the pin
  verify    check that the images a stack runs carry this checkout's inputs (provenance)

Run \`thinlayer <command> --help\` for the options of a command.`;

type Command = { run(argv: string[]): Promise<number> };

// Loaded lazily so `plan` never pays for the AWS SDK. `require`, not `import()`: the shim
// (bin/thinlayer.js) registers tsx's CommonJS hook only, and Node's ESM loader would not resolve
// extensionless TypeScript paths.
/* eslint-disable @typescript-eslint/no-require-imports */
const COMMANDS: Record<string, () => Command> = {
    plan: () => require("../cli/plan") as Command,
    ensure: () => require("../cli/ensure") as Command,
    rollback: () => require("../cli/rollback") as Command,
    verify: () => require("../cli/verify") as Command,
};
/* eslint-enable @typescript-eslint/no-require-imports */

async function main(argv: string[]): Promise<number> {
    const [cmd, ...rest] = argv;
    if (cmd === undefined || cmd === "--help" || cmd === "-h") {
        process.stdout.write(USAGE + "\n");
        return cmd === undefined ? 2 : 0;
    }
    const load = COMMANDS[cmd];
    if (!load) {
        process.stderr.write(`thinlayer: unknown command ${JSON.stringify(cmd)}; expected one of ${Object.keys(COMMANDS).join(", ")}.\n\n${USAGE}\n`);
        return 2;
    }
    return load().run(rest);
}

/**
 * Exits once stdout and stderr have handed every queued byte to the OS. Writes to a pipe are
 * asynchronous: process.exit() right after a large write drops what the reader has not taken yet
 * (a 1.38 MB plan arrived as 128 KiB). An empty write's callback runs after all earlier writes.
 */
function exitAfterFlush(code: number): void {
    process.exitCode = code;
    const flushed = (s: NodeJS.WriteStream) => new Promise<void>((resolve) => s.write("", () => resolve()));
    void Promise.all([flushed(process.stdout), flushed(process.stderr)]).then(() => process.exit(code));
}

// A reader that goes away (`thinlayer plan | head`) closes the pipe: nothing more can be delivered.
for (const s of [process.stdout, process.stderr]) {
    s.on("error", (e: NodeJS.ErrnoException) => {
        if (e.code !== "EPIPE") throw e;
    });
}

// CA certificates the program handed over (lib/oci/trust.ts): back in NODE_EXTRA_CA_CERTS for the
// processes this one starts; parsed here on the first HTTPS request.
takeHandedOverCaCerts();

main(process.argv.slice(2)).then(
    (code) => exitAfterFlush(code),
    (err: unknown) => {
        if (err instanceof ThinlayerError) {
            process.stderr.write(`thinlayer: ${err.message}\n`);
            return exitAfterFlush(1);
        }
        process.stderr.write(`thinlayer: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
        exitAfterFlush(70);
    },
);
