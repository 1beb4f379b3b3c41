// The API reference at /docs: Swagger UI (vendored, see ../vendor/README.md)
// over the OpenAPI document this server serves. Nothing is fetched from
// elsewhere: no validator badge, no external fonts.
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  tryItOutEnabled: false,
  persistAuthorization: false,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
