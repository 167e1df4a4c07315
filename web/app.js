document.getElementById("view").textContent = "schedd";
