/**
 * The bytes a daemonless app build uploads: its one layer, written in memory by the same code ensure
 * uses (lib/layer/writer.ts writeLayer), so the figure is the real compressed size, not a ratio guess. The
 * base image's config is not read (that needs the registry): the COPY destinations resolve against
 * the app Dockerfile's own WORKDIR, which is exact whenever it sets one (the example does). The
 * config blob and manifests a push adds are under a few KiB and not counted.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { appRecipe, IN_MEMORY_LAYER_BYTES } from "../build/daemonless";
import { readDockerfile } from "../dockerfile/analyze";
import { ThinlayerError } from "../errors";
import { BASE_IMAGE_ARG } from "../hashing/inputs";
import { appLayerReuse, copyEntries, writeLayer } from "../layer/writer";
import type { ImagePlan } from "../plan";
import type { ImageStatusName, UploadEstimate } from "./model";

/** Upload estimate of one image of the plan. */
export async function estimateUpload(img: ImagePlan, status: ImageStatusName, buildArgs: Record<string, string>): Promise<UploadEstimate> {
    if (status === "pinned") return { kind: "none", reason: "rollback pin: nothing is built" };
    if (status === "reuse") return { kind: "none", reason: "the tag exists: nothing is uploaded" };
    if (!img.copyOnly) return { kind: "unknown", reason: "a builder build: its layers are the output of its RUN steps, known only after the build" };
    try {
        return await measureAppLayer(img, buildArgs);
    } catch (e) {
        if (e instanceof ThinlayerError) return { kind: "unknown", reason: `the layer could not be written offline (${e.message})` };
        throw e;
    }
}

async function measureAppLayer(img: ImagePlan, buildArgs: Record<string, string>): Promise<UploadEstimate> {
    const text = readDockerfile(img.dockerfile, "app Dockerfile");
    const recipe = appRecipe(text, img.dockerfile, { ...buildArgs, [BASE_IMAGE_ARG]: "base" }, undefined, undefined);
    const entries = copyEntries(img.contextDir, img.files, recipe.copies, path.basename(img.dockerfile));
    // As ensure does: in memory up to IN_MEMORY_LAYER_BYTES, else a temp file (removed at once);
    // reusing the app's last layer's deflate chunks, and leaving this one for the ensure that follows.
    const reuse = appLayerReuse(img.contextDir, img.dockerfile);
    if (img.totalBytes <= IN_MEMORY_LAYER_BYTES) {
        const layer = await writeLayer(entries, undefined, { reuse });
        await layer.saved;
        return { kind: "measured", bytes: layer.size, tarBytes: layer.tarSize, entries: layer.entries };
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "thinlayer-receipt-"));
    try {
        const layer = await writeLayer(entries, path.join(dir, "layer.tar.gz"), { reuse });
        await layer.saved;
        return { kind: "measured", bytes: layer.size, tarBytes: layer.tarSize, entries: layer.entries };
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}
