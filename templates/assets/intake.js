// Asks a question only when its condition holds (`show_when` in the method): the question is
// hidden until the earlier answer it depends on is given. Without JavaScript every question is
// shown with its condition in words, and the server ignores an answer whose condition does
// not hold, so both ways keep the same answers.
(function () {
  "use strict";
  var form = document.querySelector("form[action='/orders']");
  if (!form) return;
  var conditional = form.querySelectorAll("[data-when]");
  if (!conditional.length) return;
  function answer(name) {
    var inputs = form.querySelectorAll("[name='" + name + "']");
    var values = [];
    inputs.forEach(function (input) {
      if ((input.type === "radio" || input.type === "checkbox") && !input.checked) return;
      if (input.value !== "") values.push(input.value);
    });
    return values;
  }
  function holds(element) {
    var test = JSON.parse(element.dataset.when);
    var given = answer(test.question);
    if (!given.length) return false;
    if (test.equals !== undefined) return given.indexOf(test.equals) !== -1;
    if (test.any_of !== undefined) {
      return given.some(function (v) { return test.any_of.indexOf(v) !== -1; });
    }
    var n = Number(given[0]);
    if (test.at_least !== undefined) return n >= test.at_least;
    if (test.at_most !== undefined) return n <= test.at_most;
    return true;
  }
  function update() {
    conditional.forEach(function (element) {
      element.hidden = !holds(element);
    });
  }
  form.addEventListener("change", update);
  form.addEventListener("input", update);
  update();
})();
