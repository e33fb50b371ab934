// The book's in-browser demo (chapters/09_in_the_browser): EfficientNet-Lite0 on ONNX Runtime
// Web, single-threaded WebAssembly, from files copied into the build (book/_ext/browser_demo.py).
// Nothing is fetched before the reader presses Run; nothing leaves the reader's machine.
//
// Preprocessing is the package's effnet_tutorial.imagenet.lite_preprocess, operation for
// operation: center_crop_box (float32 arithmetic as TensorFlow does it), the two matrices of
// bicubic_weights (TF1 resize_bicubic: a = -0.75, 1024-step table, no half-pixel offset,
// clamped borders), then (x - 127) / 128.
(function () {
  "use strict";
  const f32 = Math.fround;
  const TABLE = 1024;   // kTableSize of TF's resize_bicubic_op.cc
  const A = -0.75;

  // numpy's rint: round half to even.
  function rint(v) {
    const r = Math.round(v);
    return (Math.abs(v % 1) === 0.5 && r % 2 !== 0) ? r - 1 : r;
  }

  // effnet_tutorial.imagenet.center_crop_box
  function centerCropBox(height, width, size, cropFraction) {
    const padding = Math.round(size * (1 / cropFraction - 1));
    let side = Math.trunc(f32(f32(size / (size + padding)) * f32(Math.min(height, width))));
    side = Math.max(side, 1);
    return {top: Math.floor((height - side + 1) / 2), left: Math.floor((width - side + 1) / 2), side};
  }

  // effnet_tutorial.imagenet.bicubic_weights, as a dense (out, in) Float32Array.
  function bicubicWeights(inSize, outSize) {
    const scale = f32(inSize / outSize);
    const near = new Float32Array(TABLE + 1), far = new Float32Array(TABLE + 1);
    for (let i = 0; i <= TABLE; i++) {
      const x = f32(i / TABLE);
      near[i] = ((A + 2) * x - (A + 3)) * x * x + 1;
      const x1 = x + 1;
      far[i] = ((A * x1 - 5 * A) * x1 + 8 * A) * x1 - 4 * A;
    }
    const w = new Float32Array(outSize * inSize);
    for (let o = 0; o < outSize; o++) {
      const loc = f32(f32(o) * scale);
      const base = Math.floor(loc);
      const offset = rint(f32(f32(loc - base) * TABLE));
      const taps = [far[offset], near[offset], near[TABLE - offset], far[TABLE - offset]];
      for (let k = 0; k < 4; k++) {
        const idx = Math.min(inSize - 1, Math.max(0, base - 1 + k));
        w[o * inSize + idx] = f32(w[o * inSize + idx] + taps[k]);
      }
    }
    return w;
  }

  // Sparse rows of a dense weight matrix: [[index, weight], ...] per output.
  function sparseRows(w, outSize, inSize) {
    const rows = [];
    for (let o = 0; o < outSize; o++) {
      const row = [];
      for (let i = 0; i < inSize; i++) if (w[o * inSize + i] !== 0) row.push([i, w[o * inSize + i]]);
      rows.push(row);
    }
    return rows;
  }

  // effnet_tutorial.imagenet.lite_preprocess on RGBA pixels (ImageData.data): (1, 3, S, S) float32.
  function litePreprocess(rgba, height, width, size, cfg) {
    const box = centerCropBox(height, width, size, cfg.crop_fraction);
    const rows = sparseRows(bicubicWeights(box.side, size), size, box.side);   // same matrix for H and W
    const out = new Float32Array(3 * size * size);
    const tmp = new Float64Array(box.side * size);       // one channel resized along W
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < box.side; y++) {
        const rowBase = ((box.top + y) * width + box.left) * 4 + c;
        for (let j = 0; j < size; j++) {
          let s = 0;
          for (const [x, wt] of rows[j]) s += wt * rgba[rowBase + 4 * x];
          tmp[y * size + j] = f32(s);
        }
      }
      for (let i = 0; i < size; i++) {
        for (let j = 0; j < size; j++) {
          let s = 0;
          for (const [y, wt] of rows[i]) s += wt * tmp[y * size + j];
          out[(c * size + i) * size + j] = f32((f32(s) - cfg.mean) / cfg.std);
        }
      }
    }
    return {tensor: out, box};
  }

  function softmaxTop(logits, classes, k) {
    let max = -Infinity;
    for (const v of logits) max = Math.max(max, v);
    let sum = 0;
    const e = Array.from(logits, v => { const x = Math.exp(v - max); sum += x; return x; });
    const order = e.map((v, i) => i).sort((a, b) => e[b] - e[a]).slice(0, k);
    return order.map(i => ({index: i, name: classes[i], prob: e[i] / sum}));
  }

  function loadScript(src) {
    return new Promise((resolve, reject) => {
      const s = document.createElement("script");
      s.src = src;
      s.onload = resolve;
      s.onerror = () => reject(new Error("could not load " + src));
      document.head.appendChild(s);
    });
  }

  // fetch() that fails with a clear message: a missing file means an incomplete build.
  async function fetchOk(url) {
    let response;
    try {
      response = await fetch(url);
    } catch (err) {
      throw new Error("Could not load " + url + " (" + err.message + "). Is the book's server still running?");
    }
    if (!response.ok) {
      throw new Error("Could not load " + url + " (HTTP " + response.status + "): the book was built " +
                      "without the demo's files; run `make book` again.");
    }
    return response;
  }

  async function decode(blob) {
    let bitmap;
    try {
      bitmap = await createImageBitmap(blob, {colorSpaceConversion: "none", premultiplyAlpha: "none"});
    } catch (err) {
      throw new Error("This file could not be read as an image (" + (blob.type || "unknown type") + ", " +
                      blob.size + " bytes). Expected a PNG, JPEG, GIF, WebP or BMP picture.");
    }
    const canvas = document.createElement("canvas");
    canvas.width = bitmap.width;
    canvas.height = bitmap.height;
    const ctx = canvas.getContext("2d", {willReadFrequently: true});
    ctx.drawImage(bitmap, 0, 0);
    const data = ctx.getImageData(0, 0, bitmap.width, bitmap.height);
    bitmap.close();
    return {canvas, data};
  }

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // A (C, H, W) slice of a feature map as a grey canvas, scaled to its own min-max.
  function channelCanvas(data, c, h, w) {
    const canvas = el("canvas", {width: w, height: h, class: "effnet-demo-fmap"});
    const ctx = canvas.getContext("2d");
    const img = ctx.createImageData(w, h);
    let lo = Infinity, hi = -Infinity;
    for (let i = 0; i < h * w; i++) { const v = data[c * h * w + i]; lo = Math.min(lo, v); hi = Math.max(hi, v); }
    const span = hi > lo ? hi - lo : 1;
    for (let i = 0; i < h * w; i++) {
      const g = Math.round(255 * (data[c * h * w + i] - lo) / span);
      img.data.set([g, g, g, 255], 4 * i);
    }
    ctx.putImageData(img, 0, 0);
    return canvas;
  }

  // The model input (normalised, (3, S, S)) back to an RGB picture.
  function inputCanvas(tensor, size, cfg) {
    const canvas = el("canvas", {width: size, height: size, class: "effnet-demo-input"});
    const ctx = canvas.getContext("2d");
    const img = ctx.createImageData(size, size);
    for (let i = 0; i < size * size; i++) {
      for (let c = 0; c < 3; c++) img.data[4 * i + c] = tensor[c * size * size + i] * cfg.std + cfg.mean;
      img.data[4 * i + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
    return canvas;
  }

  function setup(root) {
    const base = root.getAttribute("data-assets");
    const select = root.querySelector("select");
    const file = root.querySelector("input[type=file]");
    const run = root.querySelector("button.effnet-demo-run");
    const status = root.querySelector(".effnet-demo-status");
    const output = root.querySelector(".effnet-demo-output");
    const drop = root.querySelector(".effnet-demo-drop");
    const state = {ort: null, session: null, manifest: null, ownImage: null, last: null};
    root.effnetDemo = state;

    function say(text, kind) {
      status.textContent = text;
      status.className = "effnet-demo-status" + (kind ? " effnet-demo-" + kind : "");
      root.setAttribute("data-state", kind || "info");
    }

    if (location.protocol === "file:") {
      say("This demo needs the book served over HTTP: browsers refuse to load WebAssembly from " +
          "file:// pages. In the project folder run   python -m http.server -d _build/html   and open " +
          "http://localhost:8000/chapters/09_in_the_browser.html", "error");
      run.disabled = true;
      return;
    }

    async function start() {
      if (state.session) return;
      const t0 = performance.now();
      say("Loading ONNX Runtime Web and the model (first run only)...");
      state.manifest = await (await fetchOk(base + "manifest.json")).json();
      await loadScript(base + "ort/ort.wasm.min.js");
      state.ort = window.ort;
      state.ort.env.wasm.wasmPaths = new URL(base + "ort/", location.href).href;
      // Threads share memory (SharedArrayBuffer), which browsers allow only in a cross-origin
      // isolated page (COOP/COEP headers); a plain static server does not send them: one thread.
      state.threads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
      state.ort.env.wasm.numThreads = state.threads;
      state.ort.env.wasm.proxy = false;
      const model = await (await fetchOk(base + state.manifest.model.file)).arrayBuffer();
      state.session = await state.ort.InferenceSession.create(model, {executionProviders: ["wasm"],
                                                                      graphOptimizationLevel: "all"});
      state.loadMs = performance.now() - t0;
    }

    async function chosenImage() {
      if (select.value === "__own__") {
        if (!state.ownImage) throw new Error("Choose a file first (the file picker, or drop a picture on the box).");
        return {label: state.ownImage.name, blob: state.ownImage};
      }
      const entry = state.manifest.photos.find(p => p.file === select.value);
      const response = await fetchOk(base + entry.file);
      return {label: entry.label, blob: await response.blob()};
    }

    function show(result) {
      const m = state.manifest;
      output.replaceChildren();
      const size = m.model.image_size;
      // 1. Preprocessing: the crop on the photo, and the model input.
      const pre = el("div", {class: "effnet-demo-pre"});
      const photo = result.canvas;
      photo.className = "effnet-demo-photo";
      const ctx = photo.getContext("2d");
      ctx.strokeStyle = "#e8112d";
      ctx.lineWidth = Math.max(2, Math.round(photo.width / 150));
      ctx.strokeRect(result.box.left, result.box.top, result.box.side, result.box.side);
      const f1 = el("figure"), f2 = el("figure");
      f1.append(photo, el("figcaption", {}, `${result.label}: ${result.width} x ${result.height} px; ` +
        `centre crop ${result.box.side} x ${result.box.side} at (${result.box.left}, ${result.box.top})`));
      f2.append(inputCanvas(result.input, size, m.preprocess),
                el("figcaption", {}, `TF1 bicubic resize to ${size} x ${size}, then (x - ${m.preprocess.mean}) / ${m.preprocess.std}: input (1, 3, ${size}, ${size})`));
      pre.append(f1, f2);
      // 2. Top 5 and latency.
      const top = el("ol", {class: "effnet-demo-top5"});
      for (const r of result.top5) {
        const li = el("li", {"data-class": r.name, "data-prob": String(r.prob)});
        const bar = el("span", {class: "effnet-demo-bar"});
        bar.style.width = (100 * r.prob).toFixed(1) + "%";
        li.append(el("span", {class: "effnet-demo-name"}, r.name), el("span", {class: "effnet-demo-prob"},
          (100 * r.prob).toFixed(1) + " %"), bar);
        top.append(li);
      }
      const timing = el("p", {class: "effnet-demo-latency", "data-ms": String(result.ms)},
        `Inference: ${result.ms.toFixed(1)} ms (one image, WebAssembly on ${state.threads} thread` +
        (state.threads > 1 ? "s" : self.crossOriginIsolated ? "" : ": this page is not cross-origin isolated") +
        (result.first ? `; loading the runtime and the model took ${state.loadMs.toFixed(0)} ms before it)` : ")"));
      // 3. Shapes and feature maps per stage.
      const table = el("table", {class: "effnet-demo-stages"});
      const head = el("tr");
      for (const h of ["output of", "shape", "a few channels (the four most active)"]) head.append(el("th", {}, h));
      table.append(head);
      for (const st of result.stages) {
        const [, c, h, w] = st.shape;
        const means = [];
        for (let k = 0; k < c; k++) {
          let s = 0;
          for (let i = 0; i < h * w; i++) s += st.data[k * h * w + i];
          means.push([s / (h * w), k]);
        }
        means.sort((a, b) => b[0] - a[0]);
        const tr = el("tr");
        const maps = el("td", {class: "effnet-demo-maps"});
        for (const [, k] of means.slice(0, 4)) maps.append(channelCanvas(st.data, k, h, w));
        tr.append(el("td", {}, st.name), el("td", {class: "effnet-demo-shape"}, "(" + st.shape.join(", ") + ")"), maps);
        table.append(tr);
      }
      output.append(pre, el("h4", {}, "Top 5 ImageNet classes"), top, timing,
                    el("h4", {}, "What each stage computed"), table);
    }

    async function go() {
      run.disabled = true;
      try {
        const first = !state.session;
        await start();
        const image = await chosenImage();
        say("Decoding and preprocessing " + image.label + "...");
        const {canvas, data} = await decode(image.blob);
        const size = state.manifest.model.image_size;
        const pre = litePreprocess(data.data, data.height, data.width, size, state.manifest.preprocess);
        const feeds = {[state.manifest.model.input]: new state.ort.Tensor("float32", pre.tensor, [1, 3, size, size])};
        say("Running EfficientNet-Lite0...");
        const t0 = performance.now();
        const results = await state.session.run(feeds);
        const ms = performance.now() - t0;
        const logits = results.logits.data;
        const result = {
          label: image.label, canvas, width: data.width, height: data.height, box: pre.box, input: pre.tensor,
          logits, ms, first,
          top5: softmaxTop(logits, state.manifest.classes, 5),
          stages: state.manifest.stages.map(s => ({name: s.name, shape: results[s.output].dims,
                                                   data: results[s.output].data})),
        };
        state.last = result;
        show(result);
        say("Done: " + image.label + ".", "done");
      } catch (err) {
        output.replaceChildren();
        say(err.message || String(err), "error");
      } finally {
        run.disabled = false;
      }
    }

    function useFile(f) {
      if (!f) return;
      state.ownImage = f;
      select.querySelector("option[value=__own__]").textContent = "your image: " + f.name;
      select.value = "__own__";
      say("Your image " + f.name + " is ready: press Run. It stays in this browser.");
    }

    run.addEventListener("click", go);
    file.addEventListener("change", () => useFile(file.files[0]));
    drop.addEventListener("dragover", e => { e.preventDefault(); drop.classList.add("effnet-demo-over"); });
    drop.addEventListener("dragleave", () => drop.classList.remove("effnet-demo-over"));
    drop.addEventListener("drop", e => {
      e.preventDefault();
      drop.classList.remove("effnet-demo-over");
      useFile(e.dataTransfer.files[0]);
    });
    run.disabled = false;
  }

  function init() { document.querySelectorAll("[data-effnet-demo]").forEach(setup); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
