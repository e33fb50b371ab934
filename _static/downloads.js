// The whole book as a PDF (make pdf) and every chapter notebook as a zip (make book), added to
// the theme's download menu on every page (book/_ext/downloads.py writes the zip).
document.addEventListener("DOMContentLoaded", () => {
  const menu = document.querySelector(".dropdown-download-buttons ul.dropdown-menu");
  if (!menu) return;
  const root = document.documentElement.dataset.content_root || "./";
  for (const [file, label, icon] of [["effnet-tutorial.pdf", "the book (.pdf)", "fa-file-pdf"],
                                     ["effnet-tutorial-notebooks.zip", "all notebooks (.zip)", "fa-file-zipper"]]) {
    const item = document.createElement("li");
    const link = document.createElement("a");
    link.href = root + file;
    link.className = "btn btn-sm dropdown-item effnet-download";
    link.setAttribute("download", file);
    link.innerHTML = `<span class="btn__icon-container"><i class="fas ${icon}"></i></span>` +
                     `<span class="btn__text-container"></span>`;
    link.querySelector(".btn__text-container").textContent = label;
    item.appendChild(link);
    menu.appendChild(item);
  }
});
