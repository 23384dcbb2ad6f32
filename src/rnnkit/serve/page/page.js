// The page of rnnkit serve: one view per task, drawn from the API's own answers (GET /v1/models, POST
// /v1/models/{id}/{command}). Plain JavaScript, no framework, no build step; figures are SVG or canvas.
"use strict";

// ------------------------------------------------------------------ helpers
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) if (child !== null && child !== undefined) node.append(child);
  return node;
}

function svg(tag, attributes = {}, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  for (const child of children.flat()) if (child !== null && child !== undefined) node.append(child);
  return node;
}

async function call(model, command, inputs, options) {
  const response = await fetch(`/v1/models/${encodeURIComponent(model.id)}/${command}`, {
    method: "POST", headers: {"content-type": "application/json"}, body: JSON.stringify({inputs, options})});
  const answer = await response.json();
  if (!response.ok) throw new Error(answer.error || response.statusText);
  return answer.outputs;
}

// Server-sent events of a streamed command: onEvent(event) for each; resolves with the final record.
async function stream(model, command, input, options, onEvent) {
  const response = await fetch(`/v1/models/${encodeURIComponent(model.id)}/${command}`, {
    method: "POST", headers: {"content-type": "application/json"},
    body: JSON.stringify({inputs: [input], options, stream: true})});
  if (!response.ok) throw new Error((await response.json()).error || response.statusText);
  const reader = response.body.getReader(), decoder = new TextDecoder();
  let buffered = "", output = null;
  for (;;) {
    const {value, done} = await reader.read();
    if (done) break;
    buffered += decoder.decode(value, {stream: true});
    let end;
    while ((end = buffered.indexOf("\n\n")) >= 0) {
      const block = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      const data = JSON.parse(block.split("\n").find(line => line.startsWith("data: ")).slice(6));
      if (block.startsWith("event: error")) throw new Error(data.error);
      if ("output" in data) output = data.output; else onEvent(data);
    }
  }
  return output;
}

function fileAsUpload(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve({name: file.name, data: reader.result.split(",", 2)[1]});
    reader.onerror = () => reject(new Error(`cannot read ${file.name}`));
    reader.readAsDataURL(file);
  });
}

// The command's options as form fields (from their JSON schema), and their values back.
function optionFields(command, preset = {}) {
  const fields = {};
  const row = el("div", {class: "options"});
  for (const [name, schema] of Object.entries(command.options)) {
    const types = schema.anyOf ? schema.anyOf.map(one => one.type) : [schema.type];
    const value = name in preset ? preset[name] : schema.default;
    let input;
    if (types.includes("boolean")) input = el("input", {type: "checkbox", name});
    else if (types.includes("integer") || types.includes("number"))
      input = el("input", {type: "number", name, step: types.includes("integer") ? "1" : "any"});
    else input = el("input", {type: "text", name, size: "8"});
    if (input.type === "checkbox") input.checked = Boolean(value);
    else if (value !== null && value !== undefined) input.value = value;
    input.title = schema.description || name;
    fields[name] = {input, types};
    row.append(el("label", {title: input.title}, name.replaceAll("_", " "), input));
  }
  const values = () => {
    const chosen = {};
    for (const [name, {input, types}] of Object.entries(fields)) {
      if (input.type === "checkbox") chosen[name] = input.checked;
      else if (input.value === "") { if (types.includes("null")) chosen[name] = null; }
      else if (types.includes("integer")) chosen[name] = parseInt(input.value, 10);
      else if (types.includes("number")) chosen[name] = parseFloat(input.value);
      else chosen[name] = input.value;
    }
    return chosen;
  };
  return {row, values, fields};
}

// A form with an input, the command's options and a button; onSubmit(input value, options) draws into out.
function form(model, commandName, {placeholder = "", value = "", file = null, multiline = false, preset = {},
                                   hidden = [], button = "Run", noInput = false}, onSubmit) {
  const command = model.commands[commandName];
  const options = optionFields(command, preset);
  for (const name of hidden) options.fields[name].input.closest("label").remove();
  const input = noInput ? el("input", {type: "hidden", name: "input"}) : file ? el("input", {type: "file", accept: file, name: "input"})
    : multiline ? el("textarea", {name: "input", placeholder}) : el("input", {type: "text", name: "input", placeholder});
  if (!file) input.value = value;
  const run = el("button", {type: "submit", class: "run"}, button);
  const out = el("div", {class: "output"});
  const node = el("form", {}, input, options.row, run);
  node.addEventListener("submit", async event => {
    event.preventDefault();
    run.disabled = true;
    out.replaceChildren();
    try {
      const given = file ? (input.files[0] ? await fileAsUpload(input.files[0]) : null) : input.value;
      if (file && given === null) throw new Error("choose a file first");
      await onSubmit(given, options.values(), out);
    } catch (error) {
      out.replaceChildren(el("p", {class: "error"}, error.message));
    } finally {
      run.disabled = false;
    }
  });
  return [node, out];
}

function recordError(record) {
  if ("error" in record) throw new Error(record.error);
  return record;
}

function probabilityBars(probabilities, label) {
  const ordered = Object.entries(probabilities).sort((a, b) => b[1] - a[1]);
  return el("div", {class: "bars"}, ordered.map(([name, p]) =>
    el("div", {class: "bar" + (name === label ? " best" : ""), "data-label": name},
       el("span", {}, name),
       el("div", {class: "track"}, el("div", {class: "fill", style: `width: ${(100 * p).toFixed(1)}%`})),
       el("span", {}, `${(100 * p).toFixed(1)}%`))));
}

// A heat map of rows x columns weights, with labels: translation's attention.
function heatMap(weights, rowLabels, columnLabels) {
  const cell = 22, left = 90, top = 70;
  rowLabels = rowLabels.slice(0, weights.length);  // a hypothesis cut at its length has no weights for its end
  const width = left + cell * columnLabels.length + 10, height = top + cell * rowLabels.length + 10;
  const figure = svg("svg", {width, height, class: "attention", viewBox: `0 0 ${width} ${height}`});
  columnLabels.forEach((label, column) => figure.append(svg("text", {
    x: left + cell * column + cell / 2, y: top - 6, transform: `rotate(-50 ${left + cell * column + cell / 2} ${top - 6})`}, label)));
  rowLabels.forEach((label, row) => {
    figure.append(svg("text", {x: left - 6, y: top + cell * row + cell * .7, "text-anchor": "end"}, label));
    weights[row].forEach((weight, column) => figure.append(svg("rect", {
      x: left + cell * column, y: top + cell * row, width: cell - 1, height: cell - 1,
      fill: `rgba(59, 130, 246, ${weight.toFixed(3)})`, stroke: "#e5e7eb"}, svg("title", {}, weight.toFixed(3)))));
  });
  return figure;
}

// ------------------------------------------------------------------ one view per task
const VIEWS = {
  sst: classification, digits: classification, ner: entities, translate: translation,
  charlm: textGeneration, wordlm: textGeneration, forecast: forecasting, music: music,
  speech: speech, caption: captioning, recommend: recommendation, chat: chat,
};

function classification(model) {
  const example = model.task === "digits" ? "0,0,5,13,9,1,0,0,0,0,13,15,10,15,5,0,0,3,15,2,0,11,8,0,0,4,12,0,0,8,8,0,0,5,8,0,0,9,8,0,0,4,11,0,1,12,7,0,0,2,14,5,10,12,0,0,0,0,6,13,10,0,0,0" : "";
  return form(model, "predict", {placeholder: "One sentence per line", multiline: true, value: example, button: "Classify"},
    async (text, options, out) => {
      const lines = text.split("\n").filter(line => line.trim());
      const records = await call(model, "predict", lines, options);
      out.replaceChildren(...records.map(record => "error" in record ? el("p", {class: "error"}, record.error)
        : el("div", {class: "result"}, el("div", {}, record.text || ""), el("div", {class: "label"}, record.label),
             probabilityBars(record.probabilities, record.label))));
    });
}

function entities(model) {
  return form(model, "predict", {placeholder: "A sentence, its tokens separated by spaces", value: "", button: "Find entities"},
    async (text, options, out) => {
      const record = recordError((await call(model, "predict", [text], options))[0]);
      const line = el("p", {class: "tagged"});
      let at = 0;
      for (const entity of record.entities) {
        line.append(record.tokens.slice(at, entity.start).join(" ") + " ");
        const kind = ["PER", "ORG", "LOC", "MISC"].includes(entity.type) ? entity.type : "other";
        line.append(el("mark", {class: `entity ent-${kind}`, "data-type": entity.type}, entity.text, el("sub", {}, entity.type)), " ");
        at = entity.end;
      }
      line.append(record.tokens.slice(at).join(" "));
      out.replaceChildren(el("div", {class: "result"}, line));
    });
}

function translation(model) {
  return form(model, "predict", {placeholder: "A sentence to translate", preset: {attention: true}, button: "Translate"},
    async (text, options, out) => {
      const record = recordError((await call(model, "predict", [text], options))[0]);
      const result = el("div", {class: "result"}, el("div", {class: "label translation"}, record.translation));
      if (record.warning) result.append(el("p", {class: "note"}, record.warning));
      for (const hypothesis of (record.hypotheses || []).slice(1))
        result.append(el("div", {class: "note"}, `${hypothesis.translation} (${hypothesis.score.toFixed(3)})`));
      if (record.attention) result.append(el("p", {class: "note"}, "Attention: where each target word looked in the source"),
                                          heatMap(record.attention.weights, record.attention.target, record.attention.source));
      out.replaceChildren(result);
    });
}

function textGeneration(model) {
  return form(model, "generate", {placeholder: "Text to start from (empty: a line break)", multiline: true,
                                  preset: {length: 300}, button: "Generate"},
    async (prime, options, out) => {
      const shown = el("pre", {class: "generated"});
      out.replaceChildren(shown);
      let first = true;
      await stream(model, "generate", prime, options, event => {
        shown.append(first ? el("span", {class: "prime"}, event.token) : event.token);
        first = false;
      });
      shown.classList.add("done");
    });
}

function forecasting(model) {
  return form(model, "predict", {file: ".csv,text/csv", button: "Forecast"},
    async (upload, options, out) => {
      const record = recordError((await call(model, "predict", [upload], options))[0]);
      const rows = atob(upload.data).trim().split(/\r?\n/).map(line => line.split(",").map(cell => cell.trim()));
      out.replaceChildren(...record.forecasts.slice(0, 6).map(entry => forecastChart(entry, rows)));
    });
}

function forecastChart(entry, rows) {
  const column = rows[0].indexOf(entry.column);
  const history = column >= 0 ? rows.slice(1).map(row => parseFloat(row[column])).filter(Number.isFinite).slice(-48) : [];
  const steps = entry.forecast.length, all = [...history, ...entry.forecast];
  for (const key of ["lo-90", "hi-90"]) if (entry[key]) all.push(...entry[key]);
  const low = Math.min(...all), high = Math.max(...all), width = 640, height = 220, pad = 30;
  const x = i => pad + (width - 2 * pad) * (i + history.length) / Math.max(1, history.length + steps - 1);
  const y = v => height - pad - (height - 2 * pad) * (v - low) / Math.max(1e-9, high - low);
  const path = (values, offset) => values.map((v, i) => `${i ? "L" : "M"}${x(i + offset).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
  const chart = svg("svg", {width, height, class: "forecast", viewBox: `0 0 ${width} ${height}`});
  for (const [lo, hi, shade] of [["lo-90", "hi-90", .15], ["lo-80", "hi-80", .25]]) {
    if (!entry[lo]) continue;
    const band = entry[hi].map((v, i) => `${i ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ") + " " +
      entry[lo].map((v, i) => [i, v]).reverse().map(([i, v]) => `L${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ") + " Z";
    chart.append(svg("path", {d: band, fill: `rgba(59,130,246,${shade})`, stroke: "none"}));
  }
  if (history.length) chart.append(svg("path", {d: path(history, -history.length), fill: "none", stroke: "#1d2430", "stroke-width": 1.5, class: "history"}));
  chart.append(svg("path", {d: path(entry.forecast, 0), fill: "none", stroke: "#3b82f6", "stroke-width": 2, class: "forecast-line"}));
  chart.append(svg("text", {x: pad, y: 16}, `${entry.series}: ${entry.column} (history, forecast${entry["lo-80"] ? ", 80% and 90% intervals" : ""})`));
  chart.append(svg("text", {x: 2, y: y(high) + 4}, high.toPrecision(3)), svg("text", {x: 2, y: y(low)}, low.toPrecision(3)));
  return el("div", {class: "result"}, chart);
}

function music(model) {
  return form(model, "generate", {noInput: true, button: "Compose", preset: {steps: 64}},
    async (_, options, out) => {
      const canvas = el("canvas", {class: "roll", width: 4 * Math.max(16, options.steps), height: 2 * 128});
      out.replaceChildren(el("div", {class: "result"}, canvas));
      const paint = canvas.getContext("2d");
      let step = 0;
      const draw = frame => {
        paint.fillStyle = "#60a5fa";
        for (const pitch of frame) paint.fillRect(4 * step, 2 * (127 - pitch), 4, 2);
        step += 1;
      };
      const record = await stream(model, "generate", "", options, event => draw(event.frame));
      const midi = `data:audio/midi;base64,${record.midi}`;
      out.firstChild.append(el("p", {}, `${record.frames.length} frames of ${record.frame_seconds} s. `,
        el("a", {href: midi, download: "rnnkit-piece.mid", class: "midi"}, "Download the MIDI file")));
    });
}

function speech(model) {
  return form(model, "predict", {file: "audio/*,.wav,.flac", button: "Transcribe"},
    async (upload, options, out) => {
      const record = recordError((await call(model, "predict", [upload], options))[0]);
      out.replaceChildren(el("div", {class: "result"}, el("div", {class: "label"}, record.transcript || "(nothing heard)"),
        el("div", {class: "note"}, `${record.duration} s of audio, score ${record.score.toFixed(2)}`)));
    });
}

function captioning(model) {
  return form(model, "predict", {file: "image/*", preset: {attention: true}, button: "Caption"},
    async (upload, options, out) => {
      const record = recordError((await call(model, "predict", [upload], options))[0]);
      const result = el("div", {class: "result"}, el("div", {class: "label"}, record.caption));
      if (record.attention) {
        const grid = el("div", {class: "attention-grid"});
        record.attention.words.forEach((word, index) => grid.append(el("figure", {},
          attentionOver(record.attention.pixels, record.attention.weights[index]), el("figcaption", {}, word))));
        result.append(el("p", {class: "note"}, "Where each word looked"), grid);
      }
      out.replaceChildren(result);
    });
}

function attentionOver(pixels, weights) {  // pixels (3, H, W) in 0..255; weights over a square grid of cells
  const [height, width] = [pixels[0].length, pixels[0][0].length], cells = Math.round(Math.sqrt(weights.length));
  const canvas = el("canvas", {width, height, style: `width: ${4 * width}px; image-rendering: pixelated`});
  const paint = canvas.getContext("2d"), image = paint.createImageData(width, height), top = Math.max(...weights);
  for (let row = 0; row < height; row++) for (let column = 0; column < width; column++) {
    const cell = Math.floor(row * cells / height) * cells + Math.floor(column * cells / width);
    const light = 0.25 + 0.75 * weights[cell] / top, at = 4 * (row * width + column);
    for (let channel = 0; channel < 3; channel++) image.data[at + channel] = pixels[channel][row][column] * light;
    image.data[at + 3] = 255;
  }
  paint.putImageData(image, 0, 0);
  return canvas;
}

function recommendation(model) {
  return form(model, "predict", {placeholder: "A history: item ids in order, separated by spaces", button: "Recommend"},
    async (text, options, out) => {
      const record = recordError((await call(model, "predict", [text], options))[0]);
      const result = el("div", {class: "result"}, el("ol", {class: "items"},
        record.items.map((item, index) => el("li", {}, `${item} `, el("span", {class: "note"}, `(${record.scores[index].toFixed(3)})`)))));
      if (record.ignored && record.ignored.length) result.append(el("p", {class: "note"}, `Not in the catalogue: ${record.ignored.join(", ")}`));
      out.replaceChildren(result);
    });
}

function chat(model) {
  const turns = [], log = el("div", {class: "chat-log"});
  const [node, out] = form(model, "predict", {placeholder: "Say something", hidden: ["n_best"], button: "Send"},
    async (message, options, errors) => {
      if (!message.trim()) throw new Error("write a message first");
      turns.push(message);
      log.append(el("div", {class: "turn user"}, message));
      const record = recordError((await call(model, "predict", [turns.join(" __eou__ ")], options))[0]);
      turns.push(record.response);
      log.append(el("div", {class: "turn bot"}, record.response || "…"));
      node.querySelector("[name=input]").value = "";
    });
  const reset = el("button", {type: "button", onclick: () => { turns.length = 0; log.replaceChildren(); }}, "New conversation");
  return [log, node, reset, out];
}

function generic(model, commandName) {  // a task without a view of its own: its records as JSON
  return form(model, commandName, {placeholder: "One input per line", multiline: true},
    async (text, options, out) => {
      const records = await call(model, commandName, text.split("\n").filter(line => line.trim()), options);
      out.replaceChildren(el("pre", {class: "generated"}, JSON.stringify(records, null, 2)));
    });
}

// ------------------------------------------------------------------ the page
async function show(model, buttons) {
  for (const button of buttons) button.classList.toggle("active", button.dataset.model === model.id);
  const view = document.getElementById("view");
  const parts = VIEWS[model.task] ? VIEWS[model.task](model) : Object.keys(model.commands).flatMap(name => generic(model, name));
  view.replaceChildren(el("h2", {}, `${model.id} `, el("span", {class: "note"}, `(${model.task})`)),
                       el("p", {class: "summary"}, model.summary), ...parts);
  view.dataset.task = model.task;
  history.replaceState(null, "", `#${encodeURIComponent(model.id)}`);
}

async function start() {
  const {models} = await (await fetch("/v1/models")).json();
  const nav = document.getElementById("models");
  const buttons = models.map(model => el("button", {type: "button", "data-model": model.id}, model.id));
  buttons.forEach((button, index) => button.addEventListener("click", () => show(models[index], buttons)));
  nav.replaceChildren(...buttons);
  const chosen = models.find(model => `#${encodeURIComponent(model.id)}` === location.hash) || models[0];
  if (chosen) show(chosen, buttons);
  else document.getElementById("view").replaceChildren(el("p", {class: "note"}, "No models are served."));
}

start().catch(error => document.getElementById("view").replaceChildren(el("p", {class: "error"}, error.message)));
