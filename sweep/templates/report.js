// Click a header: numbers sort high to low first, text A to Z; a second click reverses. Empty cells stay last.
// Tied rows keep the order the page was written in when sorted high to low (or Z to A), the reverse of it
// when sorted low to high, so the two directions are mirror images. The URL fragment #sort=COLUMN (or
// COLUMN:asc / COLUMN:desc) clicks that header of every table on load.
const written=new Map();
document.querySelectorAll('table.sortable tbody').forEach(b=>[...b.rows].forEach((r,i)=>written.set(r,i)));
function sortBy(th){const t=th.closest('table'),b=t.tBodies[0],i=th.cellIndex,rows=[...b.rows];
const v=r=>r.cells[i].dataset.v,num=rows.every(r=>v(r)===''||!isNaN(Number(v(r))));
const desc=th.classList.contains('desc')?false:th.classList.contains('asc')?true:num;
rows.sort((x,y)=>{const a=v(x),c=v(y),w=written.get(x)-written.get(y);
if(a===''||c==='')return(a==='')-(c==='')||w;
const d=num?Number(a)-Number(c):a.localeCompare(c);return desc?-d||w:d||-w;});
rows.forEach(r=>b.appendChild(r));[...th.parentNode.cells].forEach(h=>h.classList.remove('asc','desc'));
th.classList.add(desc?'desc':'asc');t.dataset.sorted=th.dataset.col+(desc?':desc':':asc');}
document.querySelectorAll('table.sortable th').forEach(th=>th.addEventListener('click',()=>sortBy(th)));
function sortFromHash(){const m=/^#sort=(.+?)(?::(asc|desc))?$/.exec(decodeURIComponent(location.hash));
if(!m)return;document.querySelectorAll('table.sortable th').forEach(th=>{if(th.dataset.col!==m[1])return;
th.click();if(m[2]&&!th.classList.contains(m[2]))th.click();});}
window.addEventListener('hashchange',sortFromHash);sortFromHash();
// "show all N columns": the columns behind the toggle (class "more") appear, and hide again on a second click.
document.querySelectorAll('button.toggle').forEach(b=>{const label=b.textContent;b.addEventListener('click',()=>{
const all=document.getElementById(b.dataset.table).classList.toggle('all');
b.textContent=all?'show the leading columns only':label;});});
