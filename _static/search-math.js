// Typeset the math in the search page's result snippets. Sphinx builds each snippet from
// a page's text, where math is still raw TeX such as \(\mathrm{Adapt}\). On the search
// page this script loads the book's local copy of MathJax and typesets the snippets as
// they appear; on every other page it does nothing.
document.addEventListener("DOMContentLoaded", () => {
  const results = document.getElementById("search-results");
  if (!results) return;
  if (!window.MathJax) {
    const mathjax = document.createElement("script");
    const root = document.documentElement.dataset.content_root || DOCUMENTATION_OPTIONS.URL_ROOT || "";
    mathjax.src = root + "_static/mathjax/tex-chtml.js";
    mathjax.async = true;
    document.head.appendChild(mathjax);
  }
  let pending = null;
  new MutationObserver(() => {
    clearTimeout(pending);
    pending = setTimeout(() => {
      if (window.MathJax && window.MathJax.typesetPromise) window.MathJax.typesetPromise([results]);
    }, 300);
  }).observe(results, { childList: true, subtree: true });
});
