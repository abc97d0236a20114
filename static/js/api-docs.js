// Starts Swagger UI from the vendored bundle (kept out of the page so the CSP needs no inline script).
window.addEventListener("DOMContentLoaded", function () {
  var el = document.getElementById("swagger-ui");
  window.SwaggerUIBundle({ url: el.dataset.specUrl, dom_id: "#swagger-ui" });
});
