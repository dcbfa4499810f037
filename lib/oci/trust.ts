/**
 * Extra CA certificates, parsed when the first HTTPS connection needs them instead of at Node's
 * start-up.
 *
 * Node reads NODE_EXTRA_CA_CERTS before any JavaScript runs and parses every certificate in it
 * (and its own roots) with OpenSSL 3, whose decoder is slow: on these machines the variable names
 * the system's whole bundle, and a process's start-up went from ~30 ms to ~75-110 ms. A run
 * against a loopback registry (plain HTTP) pays that without opening a single TLS connection.
 *
 * So the program hands the variable over (components/ensureCommand.ts): it runs the CLI with
 * THINLAYER_EXTRA_CA_CERTS set to the file and NODE_EXTRA_CA_CERTS blank. The CLI puts
 * NODE_EXTRA_CA_CERTS back in its environment for the processes it starts (builders, credential
 * helpers, git) and gives the registry client's HTTPS agent a secure context of Node's roots plus
 * that file, made once, on the first HTTPS request. The trust is the same as Node's; only its
 * moment moves. The program does not hand it over for an ECR host: the AWS SDK's clients (and the
 * credential providers behind them) take their trust from Node's start-up.
 */
import * as fs from "node:fs";
import type * as Tls from "node:tls";

/** The handed-over file's variable (empty: there was none). */
export const EXTRA_CA_ENV = "THINLAYER_EXTRA_CA_CERTS";

let handedOver: string | undefined;

/**
 * Takes the handed-over file, if any, and puts NODE_EXTRA_CA_CERTS back in `env` as the user had
 * it, so child processes inherit it unchanged. Returns the file (undefined: nothing handed over).
 */
export function takeHandedOverCaCerts(env: NodeJS.ProcessEnv = process.env): string | undefined {
    const file = env[EXTRA_CA_ENV];
    if (file === undefined) return undefined;
    if (file === "") delete env.NODE_EXTRA_CA_CERTS;
    else env.NODE_EXTRA_CA_CERTS = file;
    handedOver = file || undefined;
    return handedOver;
}

/**
 * The secure context for HTTPS: undefined (Node's default store, which holds NODE_EXTRA_CA_CERTS
 * when Node read it) unless a file was handed over; then Node's roots plus that file. A file that
 * cannot be read is ignored with a warning, as Node ignores an unreadable NODE_EXTRA_CA_CERTS.
 */
export function handedOverSecureContext(file: string | undefined = handedOver): Tls.SecureContext | undefined {
    if (file === undefined) return undefined;
    let pem: string;
    try {
        pem = fs.readFileSync(file, "utf8");
    } catch (e) {
        process.emitWarning(
            `Ignoring extra certs from \`${file}\` (${EXTRA_CA_ENV}, handed over from NODE_EXTRA_CA_CERTS), load failed: ${(e as Error).message}`,
        );
        return undefined;
    }
    // node:tls only now (the CLI's start-up does not load it: a loopback registry never needs it).
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const tls = require("node:tls") as typeof Tls;
    return tls.createSecureContext({ ca: [...tls.rootCertificates, pem] });
}
