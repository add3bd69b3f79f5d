// The dashboard's entry point: sign-in, the hash router (#/fleet, #/vehicles/{id}, #/feed,
// #/admin) and the views it shows and hides.

import { AdminView } from "./admin.js";
import { byId, toast } from "./dom.js";
import { FeedView } from "./feed.js";
import { FleetView } from "./fleet.js";
import { Session } from "./session.js";
import { VehicleView } from "./vehicle.js";

const session = new Session();
const views = {
  fleet: new FleetView(session),
  vehicle: new VehicleView(session),
  feed: new FeedView(session),
  admin: new AdminView(session),
};
const ADMIN_ONLY = new Set(["feed", "admin"]);
let current = null;

function route() {
  const parts = location.hash.replace(/^#\/?/, "").split("/");
  if (parts[0] === "vehicles" && parts[1]) return { name: "vehicle", argument: decodeURIComponent(parts[1]) };
  if (parts[0] in views && parts[0] !== "vehicle") return { name: parts[0] };
  return { name: "fleet" };
}

function showOnly(sectionId) {
  for (const section of document.querySelectorAll("main > section.view")) {
    section.hidden = section.id !== sectionId;
  }
}

function navigate() {
  if (current !== null) {
    views[current].hide();
    current = null;
  }
  if (!session.signedIn) {
    showOnly("login-view");
    byId("login-username").focus();
    return;
  }
  let { name, argument } = route();
  if (ADMIN_ONLY.has(name) && !session.can("admin")) {
    toast("That page is for admins.");
    name = "fleet";
  }
  current = name;
  showOnly(`${name}-view`);
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.dataset.view === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  views[name].show(argument);
  // Keyboard and screen-reader users land on the new page's heading.
  const heading = document.querySelector(`#${name}-view h1`);
  if (heading) heading.focus({ preventScroll: false });
}

function showAccount() {
  const signedIn = session.signedIn;
  byId("nav").hidden = !signedIn;
  byId("account").hidden = !signedIn;
  document.body.dataset.role = signedIn ? session.user.role : "";
  if (!signedIn) return;
  byId("account-name").textContent = session.user.username;
  byId("account-role").textContent = session.user.role;
  for (const link of document.querySelectorAll("#nav a[data-needs]")) {
    link.hidden = !session.can(link.dataset.needs);
  }
}

session.onChange((reason) => {
  showAccount();
  if (reason) toast(reason);
  navigate();
});

byId("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const error = byId("login-error");
  const button = event.submitter || event.target.querySelector("button");
  error.textContent = "";
  button.disabled = true;
  try {
    await session.login(byId("login-username").value.trim(), byId("login-password").value);
    byId("login-password").value = "";
  } catch (problem) {
    error.textContent = problem.status === 401 ? "Wrong user name or password." : problem.message;
  } finally {
    button.disabled = false;
  }
});

byId("logout").addEventListener("click", () => session.logout());
window.addEventListener("hashchange", navigate);
showAccount();
navigate();
