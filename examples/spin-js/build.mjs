// Bundles src/index.js into build/bundle.js; the WIT imports stay external, for j2w to bind.
import { build } from "esbuild";
import { SpinEsbuildPlugin } from "@spinframework/build-tools/plugins/esbuild/index.js";

await build({
  entryPoints: ["./src/index.js"],
  outfile: "./build/bundle.js",
  bundle: true,
  format: "esm",
  minify: false,
  plugins: [await SpinEsbuildPlugin()],
});
