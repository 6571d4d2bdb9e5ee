// Keyboard focus survives partial swaps. htmx gives focus back to an element that returns with
// the focused one's id; when none does (Skip turns the row into one with only Reopen), focus goes
// to the first control (or the one marked data-focus-first) of the nearest enclosing element that
// came back with its id, instead of falling to the top of the page.
(() => {
  const CONTROLS =
    "button:not([disabled]), input:not([type=hidden]):not([disabled]), select, textarea, a[href]";
  let trail = [];

  document.addEventListener("htmx:beforeSwap", () => {
    trail = [];
    const active = document.activeElement;
    for (let el = active; el && el !== document.body; el = el.parentElement) {
      if (el.id) trail.push(el.id);
    }
  });

  function restore() {
    const active = document.activeElement;
    if (!trail.length || (active && active !== document.body)) return;
    for (const id of trail) {
      const found = document.getElementById(id);
      if (!found) continue;
      // A region may name the control that takes over (a measurement's Cancel, not its link).
      const control = found.matches(CONTROLS)
        ? found
        : found.querySelector("[data-focus-first]") || found.querySelector(CONTROLS);
      if (control) {
        control.focus({ preventScroll: true });
        break;
      }
    }
    trail = [];
  }

  // After settling, not at the swap: only then has htmx wired up the new controls, so a key
  // pressed at once goes through htmx rather than submitting the form the old way.
  document.addEventListener("htmx:afterSettle", restore);
})();
