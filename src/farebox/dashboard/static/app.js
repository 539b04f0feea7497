// farebox dashboard: the little the pages need beyond htmx (copy buttons, confirmations, the
// "I saved it" step, the playground's streamed replies). No inline script anywhere: the page's
// Content-Security-Policy forbids it. Text from the server goes in with textContent, never HTML.
"use strict";

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

function copyText(text, button) {
  const done = () => {
    const before = button.textContent;
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = before; }, 1500);
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, () => fallbackCopy(text, done));
  } else {
    fallbackCopy(text, done);
  }
}

function fallbackCopy(text, done) {
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.className = "visually-hidden";
  document.body.appendChild(area);
  area.select();
  try { document.execCommand("copy"); done(); } finally { area.remove(); }
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.getElementById(button.dataset.copy);
  if (source) copyText(source.value !== undefined ? source.value : source.textContent.trim(), button);
});

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) event.preventDefault();
});

document.addEventListener("change", (event) => {
  const box = event.target.closest("[data-enables]");
  if (!box) return;
  const target = document.getElementById(box.dataset.enables);
  if (target) {
    target.toggleAttribute("aria-disabled", !box.checked);
    target.classList.toggle("disabled", !box.checked);
    if (target.tagName === "BUTTON") target.disabled = !box.checked;
  }
});

// --- playground --------------------------------------------------------------------------
function setupPlayground(form) {
  const log = document.getElementById("chat-log");
  const status = document.getElementById("chat-status");
  const input = form.querySelector("textarea[name=prompt]");
  const send = form.querySelector("button[type=submit]");
  const history = [];

  function bubble(role, text) {
    const div = document.createElement("div");
    div.className = "msg " + role;
    div.textContent = text;
    log.appendChild(div);
    return div;
  }

  async function run(event) {
    event.preventDefault();
    const prompt = input.value.trim();
    if (!prompt) return;
    const model = form.querySelector("select[name=model]").value;
    history.push({ role: "user", content: prompt });
    bubble("user", prompt);
    input.value = "";
    const reply = bubble("assistant", "");
    reply.setAttribute("aria-busy", "true");
    send.disabled = true;
    status.textContent = "Streaming…";
    let text = "";
    let cost = null;
    try {
      const response = await fetch(form.action, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
        body: JSON.stringify({ model: model, messages: history }),
        credentials: "same-origin",
      });
      if (!response.ok) {
        let message = "The request failed (" + response.status + ").";
        try { message = (await response.json()).error.message; } catch (e) { /* keep */ }
        throw new Error(message);
      }
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const event = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          for (const line of event.split("\n")) {
            if (!line.startsWith("data: ")) continue;
            const data = line.slice(6);
            if (data === "[DONE]") continue;
            let chunk;
            try { chunk = JSON.parse(data); } catch (e) { continue; }
            if (chunk.error) throw new Error(chunk.error.message || "The stream failed.");
            for (const choice of chunk.choices || []) {
              const piece = choice.delta && choice.delta.content;
              if (piece) { text += piece; reply.textContent = text; }
            }
            if (chunk.usage && chunk.usage.cost !== undefined) cost = chunk.usage.cost;
          }
        }
      }
      history.push({ role: "assistant", content: text });
      const note = document.createElement("span");
      note.className = "cost";
      note.textContent = cost === null ? "cost unknown" : "cost $" + Number(cost).toFixed(6);
      reply.appendChild(note);
      status.textContent = "Done.";
    } catch (error) {
      history.pop();
      reply.classList.add("error");
      reply.textContent = error.message;
      status.textContent = "Failed.";
    } finally {
      reply.removeAttribute("aria-busy");
      send.disabled = false;
      if (window.htmx) window.htmx.trigger(document.body, "balance-changed");
      input.focus();
    }
  }

  form.addEventListener("submit", run);
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) form.requestSubmit();
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("playground");
  if (form) setupPlayground(form);
});
