// Sends the CSRF token with every htmx request; plain forms carry it as a hidden field.
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="csrf-token"]');
  document.addEventListener("htmx:configRequest", function (event) {
    if (meta) event.detail.headers["X-CSRF-Token"] = meta.getAttribute("content");
  });
})();
