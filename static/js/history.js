/* History: the filters fold away at phone width, where they would push the
 * list below the fold; on a wide screen they stay open. The server opens them
 * when some filter is set. */
"use strict";
(function () {
  const box = document.getElementById("filters-box");
  if (box && window.matchMedia("(min-width: 701px)").matches) box.open = true;
})();
