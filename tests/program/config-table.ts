/**
 * Renders the config reference in docs/program.md from Pulumi.yaml's schema (the one source of
 * truth). `node --import tsx tests/program/config-table.ts` prints it; with `--write` it replaces
 * the table between the `<!-- config-table -->` markers of docs/program.md. readme-config.test.ts
 * checks that the table there is exactly this.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { loadProjectSchema, PROJECT, SECRET_KEYS, type ConfigSchema } from "../../lib/config";

/** The document that holds the config table, relative to the project root. */
export const CONFIG_DOC = "docs/program.md";

/** The markers around the table, and the table between them. */
export const TABLE_BLOCK = /(<!-- config-table -->\n)([\s\S]*?)(\n<!-- \/config-table -->)/;

const cell = (s: string) => s.replace(/\|/g, "\\|").replace(/\n/g, " ");

/** Markdown table: one row per key, in Pulumi.yaml order. */
export function renderConfigTable(schema: ConfigSchema): string {
    const rows = Object.entries(schema).map(([key, e]) => {
        const type = e.type === "array" ? "list of strings" : e.type;
        const dflt = typeof e.default === "string" ? (e.default === "" ? '`""`' : `\`${e.default}\``) : `\`${JSON.stringify(e.default)}\``;
        return `| \`${PROJECT}:${key}\` | ${type}${SECRET_KEYS.has(key) ? " (secret)" : ""} | ${cell(dflt)} | ${cell(e.description)} |`;
    });
    return ["| Key | Type | Default | Description |", "|---|---|---|---|", ...rows].join("\n");
}

if (require.main === module) {
    const root = path.resolve(__dirname, "..", "..");
    const table = renderConfigTable(loadProjectSchema(root));
    if (process.argv.includes("--write")) {
        const file = path.join(root, CONFIG_DOC);
        const text = fs.readFileSync(file, "utf8");
        if (!TABLE_BLOCK.test(text))
            throw new Error(`${CONFIG_DOC} has no <!-- config-table --> … <!-- /config-table --> block; add the two marker lines where the table belongs`);
        fs.writeFileSync(
            file,
            text.replace(TABLE_BLOCK, (_m, open: string, _old: string, close: string) => open + table + close),
        );
        process.stdout.write(`wrote the config table (${Object.keys(loadProjectSchema(root)).length} keys) to ${CONFIG_DOC}\n`);
    } else {
        process.stdout.write(table + "\n");
    }
}
