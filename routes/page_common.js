"use strict";
// Shared by the review page and the inbox (pages.py puts it before each page's script).

const $ = (id) => document.getElementById(id);
const show = (element, visible) => element.classList.toggle("hidden", !visible);

function say(text, isError) {
  const notice = $("notice");
  notice.textContent = text || "";
  notice.classList.toggle("error", !!isError);
  show(notice, !!text);
}

// A deadline is red when less than this is left.
const URGENT_MS = 3600000;

// Milliseconds left before a deadline by the server's clock (skew: server minus browser).
const msUntil = (deadline, skew) => new Date(deadline).getTime() - (Date.now() + skew);

// "2 days 23 h", "5 h 12 min", "4 min 10 s": the two largest units; null once it passed.
function remaining(deadline, skew) {
  const ms = msUntil(deadline, skew);
  if (ms <= 0) return null;
  const s = Math.floor(ms / 1000), days = Math.floor(s / 86400), hours = Math.floor(s % 86400 / 3600);
  const minutes = Math.floor(s % 3600 / 60);
  if (days) return `${days} day${days > 1 ? "s" : ""} ${hours} h`;
  if (hours) return `${hours} h ${minutes} min`;
  return `${minutes} min ${s % 60} s`;
}
