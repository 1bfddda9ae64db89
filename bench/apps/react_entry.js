// React 18 server rendering, the SSR workload of the bench's `apps` section: a page of
// N product rows (renderToString), N from ?items= (default 100).
import React from "react";
import { renderToString } from "react-dom/server.browser";

const h = React.createElement;
function Row({ item }) {
  return h("li", { className: "item" }, h("a", { href: `/p/${item.id}` }, item.name), h("span", { className: "price" }, `$${item.price.toFixed(2)}`));
}
function Page({ items }) {
  return h("html", null,
    h("head", null, h("title", null, "Products")),
    h("body", null, h("h1", null, `${items.length} products`), h("ul", null, items.map((item) => h(Row, { key: item.id, item })))));
}
function render(url) {
  const n = Math.min(5000, Number(new URL(url).searchParams.get("items")) || 100);
  const items = Array.from({ length: n }, (_, i) => ({ id: i, name: `Product ${i}`, price: (i * 37) % 1000 / 7 }));
  return "<!doctype html>" + renderToString(h(Page, { items }));
}
addEventListener("fetch", (event) => {
  event.respondWith(new Response(render(event.request.url), { headers: { "content-type": "text/html; charset=utf-8" } }));
});
