// Live state: the console pushes its status as server-sent events.
(function () {
  if (!window.EventSource || !document.getElementById("tunnel-state")) return;
  function set(el, text) {
    if (!el) return;
    el.textContent = text;
    el.className = "state " + text;
  }
  var es = new EventSource("/events");
  es.onmessage = function (ev) {
    var st = JSON.parse(ev.data);
    set(document.getElementById("tunnel-state"), st.tunnel.state);
    document.getElementById("tunnel-error").textContent = st.tunnel.last_error || "";
    (st.forwards || []).forEach(function (f) {
      var state = document.querySelector('[data-entry-state="' + f.entry + '"]');
      if (state && state.textContent !== "closed") set(state, f.up ? "up" : "down");
      set(document.querySelector('[data-entry-local="' + f.entry + '"]'), f.local_listening ? "listening" : "not listening");
      var err = document.querySelector('[data-entry-error="' + f.entry + '"]');
      if (err) err.textContent = f.error && f.error !== "closed" ? f.error : "";
    });
    Object.keys(st.traffic || {}).forEach(function (id) {
      var t = document.querySelector('[data-entry-traffic="' + id + '"]');
      if (t) t.textContent = st.traffic[id];
    });
    (st.certificates || []).forEach(function (c) {
      ["data-cert-state", "data-entry-cert"].forEach(function (attr) {
        var el = document.querySelector("[" + attr + '="' + c.domain + '"]');
        if (!el) return;
        el.textContent = c.summary;
        el.className = "state " + c.state;
      });
      // Issued: the "certificate pending" warning no longer holds.
      var pending = document.querySelector('[data-cert-pending="' + c.domain + '"]');
      if (pending && (c.state === "valid" || c.state === "renewing")) pending.hidden = true;
      var ch = document.querySelector('[data-cert-challenge="' + c.domain + '"]');
      if (ch) ch.textContent = c.challenge || "";
      var rn = document.querySelector('[data-cert-renews="' + c.domain + '"]');
      if (rn) rn.textContent = c.managed && c.renew_at ? c.renew_at.slice(0, 16).replace("T", " ") + " UTC" : "";
    });
  };
})();
