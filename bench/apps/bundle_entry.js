import MarkdownIt from "markdown-it";
import Handlebars from "handlebars/dist/handlebars.js";
import { Hono } from "hono";

const md = new MarkdownIt({ linkify: true, typographer: true });
const page = Handlebars.compile(
  "<!doctype html><html><head><title>{{title}}</title></head><body><nav>{{#each links}}<a href=\"{{href}}\">{{name}}</a>{{/each}}</nav><main>{{{body}}}</main></body></html>");
const app = new Hono();
const render = (title, text) => page({ title, links: [{ href: "/", name: "home" }, { href: "/docs", name: "docs" }], body: md.render(text) });
app.get("/", (c) => c.html(render("Home", "# Hello\n\nSome *markdown* with a link: https://example.com")));
app.get("/docs/:name", (c) => c.html(render(c.req.param("name"), "## Docs\n\n- one\n- two")));
addEventListener("fetch", (event) => event.respondWith(app.fetch(event.request)));
