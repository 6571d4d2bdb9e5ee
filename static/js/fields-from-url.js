// A form whose fields make up the page's address (hx-push-url) must show what the address says,
// or its next request quietly changes the query:
// - Back and Forward restore htmx's snapshot of the page, in which every field holds the value it
//   was first rendered with, not what was typed since;
// - a link that pushes a narrower address (a search facet) leaves the form unaware of it.
// So each time htmx pushes or restores an address, the fields of forms marked
// data-fields-from-url are set from it, except the one being typed in: its text is newer.
(() => {
  function fillFromAddress(keepFocused) {
    const params = new URLSearchParams(window.location.search);
    for (const form of document.querySelectorAll("form[data-fields-from-url]")) {
      for (const field of form.elements) {
        if (!field.name || ["button", "submit", "reset", "file"].includes(field.type)) continue;
        if (keepFocused && field === document.activeElement) continue;
        const values = params.getAll(field.name);
        if (field.type === "checkbox" || field.type === "radio") {
          field.checked = values.includes(field.value);
          continue;
        }
        // The last value wins, as on the server (Django's QueryDict.get).
        field.value = values.length ? values[values.length - 1] : "";
        if (field.tagName === "SELECT" && field.selectedIndex === -1) field.selectedIndex = 0;
      }
    }
  }
  document.addEventListener("htmx:historyRestore", () => fillFromAddress(false));
  document.addEventListener("htmx:pushedIntoHistory", () => fillFromAddress(true));
})();
