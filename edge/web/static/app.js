// facegate's own script (the CSP allows no inline one): "select all" on the review page.
document.addEventListener("change", (e) => {
  if (e.target.id === "select-all") {
    for (const box of document.querySelectorAll("input[name=event_id]")) box.checked = e.target.checked;
  }
});
